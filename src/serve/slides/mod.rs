//! `serve --slides DIR`: the whole-slide images under a folder, for a viewer. The folder is walked
//! as predict walks one (every format predict reads; a DICOM series is one slide), each slide kept
//! in the folder's catalogue (`catalogue`) under an id from its path, and drawn as Deep Zoom tiles
//! (`deepzoom` lays them out, `render` draws them) from slides kept open and tiles kept encoded,
//! both in caches bounded by bytes. Nothing outside the folder is ever listed or read: a path is
//! checked after its links are resolved.

pub(crate) mod analyses;
mod cache;
mod catalogue;
pub(crate) mod deepzoom;
mod queued;
mod render;
pub(crate) mod upload;

use crate::inputs::{self, Source};
use crate::slide::rows::{ReadError, Regions};
pub(crate) use analyses::{Analyses, AnalysisError};
use cache::Weighed;
use catalogue::{Catalogue, Description, Entry, Stamp};
use deepzoom::{DeepZoom, NoSuchTile};
use render::RenderError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The folder scancer keeps its own files in, inside the slide folder; never listed.
pub(crate) const STATE_DIR: &str = ".scancer";
/// Encoded tiles kept for reuse.
const TILE_CACHE_BYTES: usize = 128 << 20;
/// Slides kept open (a single-level image's pyramid is held in memory).
const OPEN_CACHE_BYTES: usize = 2 << 30;
/// The largest thumbnail side a request may ask for.
pub(crate) const MAX_THUMBNAIL: usize = 2048;

/// The slides of one folder.
pub(crate) struct Library {
    /// The folder, its links resolved.
    dir: PathBuf,
    catalogue: Mutex<Catalogue>,
    /// Opened slides by id and file stamp (a changed file is opened anew).
    opened: Mutex<Weighed<String, Arc<Regions>>>,
    /// Encoded tiles by slide, stamp, level, column and row.
    tiles: Mutex<Weighed<String, Arc<Vec<u8>>>>,
    max_pixels: u64,
    /// The largest upload accepted.
    pub(crate) max_upload: u64,
}

/// Why a slide request was not answered; `app::slides` maps each to its status once.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SlideError {
    #[error("no slide {0}")]
    NoSuchSlide(String),
    #[error("slide {name}: {why}")]
    Unreadable { name: String, why: String },
    #[error("slide {name}: {error}")]
    NoSuchTile { name: String, error: NoSuchTile },
    #[error("slide {name}: {error}")]
    Render { name: String, error: RenderError },
    #[error("{0}")]
    Catalogue(String),
    #[error("the slide reader stopped: {0}")]
    Crashed(String),
}

/// A slide as `GET /slides` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Listed {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) width: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) height: Option<u64>,
    /// Microns per pixel (the mean of across and down), where declared.
    pub(crate) mpp: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) levels: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) vendor: Option<String>,
    /// Why the slide cannot be viewed, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Its analyses, oldest first (id, model, status, created).
    pub(crate) analyses: Vec<serde_json::Value>,
}

/// `GET /slides/{id}/properties`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Properties {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) mpp: Option<f64>,
    pub(crate) mpp_x: Option<f64>,
    pub(crate) mpp_y: Option<f64>,
    pub(crate) objective: Option<f64>,
    pub(crate) vendor: String,
    /// The slide's own pyramid, level 0 first.
    pub(crate) levels: Vec<PropertiesLevel>,
    /// Deep Zoom's levels (1x1 first).
    pub(crate) deepzoom_levels: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PropertiesLevel {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) downsample: f64,
}

impl Library {
    /// The library of `dir` (which must be a folder), its catalogue opened or created in it.
    pub(crate) fn open(dir: &Path, max_pixels: u64, max_upload: u64) -> anyhow::Result<Library> {
        use anyhow::Context;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("--slides {}", dir.display()))?;
        anyhow::ensure!(dir.is_dir(), "--slides {}: not a folder", dir.display());
        let state = dir.join(STATE_DIR);
        std::fs::create_dir_all(state.join(upload::PARTS))
            .with_context(|| format!("--slides: cannot create {}", state.display()))?;
        upload::clear_parts(&state.join(upload::PARTS));
        let catalogue = Catalogue::open(&state.join("catalogue.sqlite3"))?;
        Ok(Library {
            dir,
            catalogue: Mutex::new(catalogue),
            opened: Mutex::new(Weighed::new(OPEN_CACHE_BYTES)),
            tiles: Mutex::new(Weighed::new(TILE_CACHE_BYTES)),
            max_pixels,
            max_upload,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Walks the folder, records what it holds, and lists it by name. Files the catalogue knows
    /// unchanged are not opened again.
    pub(crate) fn scan(&self) -> Result<Vec<Listed>, SlideError> {
        let found = inputs::discover_within(&self.dir, STATE_DIR);
        let mut entries = Vec::new();
        for item in &found.items {
            if let Some(entry) = self.entry_of(item)? {
                entries.push(entry);
            }
        }
        let mut catalogue = self.catalogue.lock().expect("catalogue lock");
        catalogue
            .record_scan(&entries)
            .map_err(|e| SlideError::Catalogue(format!("cannot record the slides: {e}")))?;
        let mut listed: Vec<Listed> = entries.iter().map(listed).collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    /// The catalogue's entry of one walked item: known if unchanged, else described now; none for
    /// scancer's own files and for anything whose links lead outside the folder.
    fn entry_of(&self, item: &inputs::Item) -> Result<Option<Entry>, SlideError> {
        let (shown, file) = match item {
            Ok(input) => match &input.source {
                Source::File(path) => (path.clone(), path.clone()),
                Source::Dicom(series) => (
                    PathBuf::from(&input.display),
                    series.opened_by().to_path_buf(),
                ),
                Source::Stdin => return Ok(None),
            },
            Err(unlisted) => {
                let path = PathBuf::from(&unlisted.display);
                (path.clone(), path)
            }
        };
        let (Some(name), Some(file_name)) = (self.relative(&shown), self.relative(&file)) else {
            return Ok(None);
        };
        if name.split('/').next() == Some(STATE_DIR) {
            return Ok(None);
        }
        let stamp = stamp_of(&file).unwrap_or(Stamp {
            bytes: 0,
            modified: 0,
        });
        let known = self
            .catalogue
            .lock()
            .expect("catalogue lock")
            .known(&name, stamp)
            .map_err(|e| SlideError::Catalogue(format!("cannot read the catalogue: {e}")))?;
        if let Some(entry) = known {
            return Ok(Some(entry));
        }
        let described = match item {
            Err(unlisted) => Err(unlisted.message.clone()),
            Ok(_) => describe(&file, self.max_pixels).map_err(|e| e.to_string()),
        };
        Ok(Some(Entry {
            id: slide_id(&name),
            name,
            file: file_name,
            stamp,
            described,
        }))
    }

    /// `path` relative to the folder, `/`-separated, if it lies inside it once links are resolved.
    fn relative(&self, path: &Path) -> Option<String> {
        let resolved = path.canonicalize().ok()?;
        resolved.strip_prefix(&self.dir).ok()?;
        // The name is the path as found (a link inside the folder keeps its own name).
        let shown = path.strip_prefix(&self.dir).ok()?;
        let parts: Vec<String> = shown
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        Some(parts.join("/"))
    }

    /// The catalogue's entry of `id`, from the last scan.
    pub(crate) fn entry(&self, id: &str) -> Result<Entry, SlideError> {
        let entry = self
            .catalogue
            .lock()
            .expect("catalogue lock")
            .get(id)
            .map_err(|e| SlideError::Catalogue(format!("cannot read the catalogue: {e}")))?;
        entry.ok_or_else(|| SlideError::NoSuchSlide(id.to_string()))
    }

    /// The slide `id`, opened (or from the cache), with its entry (stamped as its file is now).
    fn opened(&self, id: &str) -> Result<(Entry, Arc<Regions>), SlideError> {
        let mut entry = self.entry(id)?;
        if let Err(why) = &entry.described {
            return Err(SlideError::Unreadable {
                name: entry.name.clone(),
                why: why.clone(),
            });
        }
        let file = self.dir.join(&entry.file);
        // The file may have changed since the scan: its stamp now keys the cache.
        entry.stamp = stamp_of(&file).unwrap_or(entry.stamp);
        let key = version_key(id, entry.stamp);
        if let Some(slide) = self.opened.lock().expect("open slides lock").get(&key) {
            return Ok((entry, slide));
        }
        let unreadable = |e: ReadError| SlideError::Unreadable {
            name: entry.name.clone(),
            why: e.to_string(),
        };
        // Checked again at opening: the file may have been replaced by a link since the scan.
        if self.relative(&file).is_none() {
            return Err(SlideError::NoSuchSlide(id.to_string()));
        }
        let slide = Arc::new(Regions::open(&file, self.max_pixels).map_err(unreadable)?);
        let weight = slide.weight();
        self.opened
            .lock()
            .expect("open slides lock")
            .put(key, Arc::clone(&slide), weight);
        Ok((entry, slide))
    }

    /// After a read error the slide is opened anew next time: OpenSlide's errors are sticky (every
    /// later read of the handle fails), and one damaged tile must not cost the rest of the slide.
    fn forget_after(&self, id: &str, entry: &Entry, error: &RenderError) {
        if matches!(error, RenderError::Read(_)) {
            let key = version_key(id, entry.stamp);
            self.opened.lock().expect("open slides lock").remove(&key);
        }
    }

    /// The slide's Deep Zoom document.
    pub(crate) fn dzi(&self, id: &str) -> Result<String, SlideError> {
        let (_, slide) = self.opened(id)?;
        Ok(DeepZoom::new(slide.levels().to_vec()).dzi())
    }

    /// Tile `col`, `row` of Deep Zoom level `level`, as JPEG.
    pub(crate) fn tile(
        &self,
        id: &str,
        level: usize,
        col: usize,
        row: usize,
    ) -> Result<Arc<Vec<u8>>, SlideError> {
        let (entry, slide) = self.opened(id)?;
        let key = format!("{}/{level}/{col}_{row}", version_key(id, entry.stamp));
        if let Some(tile) = self.tiles.lock().expect("tile cache lock").get(&key) {
            return Ok(tile);
        }
        let zoom = DeepZoom::new(slide.levels().to_vec());
        let read = zoom
            .tile(level, col, row)
            .map_err(|error| SlideError::NoSuchTile {
                name: entry.name.clone(),
                error,
            })?;
        let jpeg = Arc::new(render::tile(&slide, read).map_err(|error| {
            self.forget_after(id, &entry, &error);
            SlideError::Render {
                name: entry.name.clone(),
                error,
            }
        })?);
        let weight = jpeg.len();
        self.tiles
            .lock()
            .expect("tile cache lock")
            .put(key, Arc::clone(&jpeg), weight);
        Ok(jpeg)
    }

    /// The slide at most `side` pixels on its longer side, as JPEG.
    pub(crate) fn thumbnail(&self, id: &str, side: usize) -> Result<Arc<Vec<u8>>, SlideError> {
        let (entry, slide) = self.opened(id)?;
        let key = format!("{}/thumbnail/{side}", version_key(id, entry.stamp));
        if let Some(jpeg) = self.tiles.lock().expect("tile cache lock").get(&key) {
            return Ok(jpeg);
        }
        let jpeg = render::thumbnail(&slide, side).map_err(|error| {
            self.forget_after(id, &entry, &error);
            SlideError::Render {
                name: entry.name.clone(),
                error,
            }
        })?;
        let jpeg = Arc::new(jpeg);
        self.tiles
            .lock()
            .expect("tile cache lock")
            .put(key, Arc::clone(&jpeg), jpeg.len());
        Ok(jpeg)
    }

    pub(crate) fn properties(&self, id: &str) -> Result<Properties, SlideError> {
        let (entry, slide) = self.opened(id)?;
        let info = slide.info();
        let levels = slide.levels();
        Ok(Properties {
            id: entry.id,
            name: entry.name,
            width: levels[0].width,
            height: levels[0].height,
            mpp: info.mpp.map(|(x, y)| (x + y) / 2.0),
            mpp_x: info.mpp.map(|m| m.0),
            mpp_y: info.mpp.map(|m| m.1),
            objective: info.objective,
            vendor: info.vendor.clone(),
            levels: levels
                .iter()
                .map(|l| PropertiesLevel {
                    width: l.width,
                    height: l.height,
                    downsample: l.downsample,
                })
                .collect(),
            deepzoom_levels: DeepZoom::new(levels.to_vec()).level_count(),
        })
    }
}

/// A slide's id: from its name in the folder, so that it is the same across restarts, rescans
/// and a lost catalogue.
fn slide_id(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// What the caches know a slide's file by: its id and the stamp of the file as it is now (a
/// changed file is another version).
fn version_key(id: &str, stamp: Stamp) -> String {
    format!("{id}@{}.{}", stamp.bytes, stamp.modified)
}

fn stamp_of(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    Some(Stamp {
        bytes: meta.len(),
        modified,
    })
}

fn describe(path: &Path, max_pixels: u64) -> Result<Description, ReadError> {
    let (levels, info) = Regions::describe(path, max_pixels)?;
    Ok(Description {
        width: levels[0].width as u64,
        height: levels[0].height as u64,
        levels: levels.len() as u32,
        mpp: info.mpp,
        objective: info.objective,
        vendor: info.vendor,
    })
}

fn listed(entry: &Entry) -> Listed {
    let d = entry.described.as_ref().ok();
    Listed {
        id: entry.id.clone(),
        name: entry.name.clone(),
        bytes: entry.stamp.bytes,
        width: d.map(|d| d.width),
        height: d.map(|d| d.height),
        mpp: d.and_then(|d| d.mpp).map(|(x, y)| (x + y) / 2.0),
        levels: d.map(|d| d.levels),
        vendor: d.map(|d| d.vendor.clone()),
        error: entry.described.as_ref().err().cloned(),
        analyses: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_names() {
        assert_eq!(slide_id("a/b.svs"), slide_id("a/b.svs"));
        assert_ne!(slide_id("a/b.svs"), slide_id("a/c.svs"));
        assert_eq!(slide_id("x").len(), 16);
    }
}
