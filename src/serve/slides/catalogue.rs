//! The catalogue of a slide folder, in SQLite (`.scancer/catalogue.sqlite3` inside it): every
//! slide found there with what opening it told (size, levels, resolution, vendor, or why it
//! cannot be read), keyed by its path and remembered with the file's length and modification time,
//! so that a listing opens only new or changed files, and ids stay the same across restarts.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// The catalogue's schema version (SQLite's user_version): 1, slides; 2, analyses.
const SCHEMA: i64 = 2;

pub(crate) struct Catalogue {
    db: Connection,
}

/// A slide as the catalogue holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Stable: from the slide's path in the folder.
    pub(crate) id: String,
    /// The slide's path in the folder, `/`-separated (a DICOM series: its folder).
    pub(crate) name: String,
    /// The file opened to read it, relative to the folder (a DICOM series: an instance).
    pub(crate) file: String,
    /// The opened file's length and modification time (nanoseconds since the epoch).
    pub(crate) stamp: Stamp,
    pub(crate) described: Result<Description, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) bytes: u64,
    pub(crate) modified: i64,
}

/// What opening a slide told.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Description {
    pub(crate) width: u64,
    pub(crate) height: u64,
    /// The slide's own pyramid levels.
    pub(crate) levels: u32,
    pub(crate) mpp: Option<(f64, f64)>,
    pub(crate) objective: Option<f64>,
    pub(crate) vendor: String,
}

/// The catalogue could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("the slide catalogue {path}: {error}")]
pub(crate) struct CatalogueError {
    path: String,
    error: rusqlite::Error,
}

impl Catalogue {
    /// Opens (or creates) the catalogue at `path`.
    pub(crate) fn open(path: &Path) -> Result<Catalogue, CatalogueError> {
        let failed = |error| CatalogueError {
            path: path.display().to_string(),
            error,
        };
        let db = Connection::open(path).map_err(failed)?;
        // WAL: a reader never waits for the writer, and a crash mid-write loses nothing confirmed.
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(failed)?;
        db.pragma_update(None, "synchronous", "NORMAL")
            .map_err(failed)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(failed)?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(failed)?;
        if version > SCHEMA {
            return Err(failed(rusqlite::Error::InvalidParameterName(format!(
                "written by a newer scancer (schema {version}; this one reads {SCHEMA})"
            ))));
        }
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS slides (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                file TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                modified INTEGER NOT NULL,
                width INTEGER,
                height INTEGER,
                levels INTEGER,
                mpp_x REAL,
                mpp_y REAL,
                objective REAL,
                vendor TEXT,
                error TEXT,
                present INTEGER NOT NULL DEFAULT 1
            );
            CREATE TABLE IF NOT EXISTS analyses (
                id TEXT PRIMARY KEY,
                slide TEXT NOT NULL,
                model TEXT NOT NULL,
                request TEXT NOT NULL,
                status TEXT NOT NULL,
                windows_done INTEGER,
                windows INTEGER,
                error TEXT,
                record TEXT,
                created TEXT NOT NULL,
                started TEXT,
                finished TEXT
            );
            CREATE INDEX IF NOT EXISTS analyses_of_slide ON analyses (slide, created);
            PRAGMA user_version = 2;",
        )
        .map_err(failed)?;
        Ok(Catalogue { db })
    }

    /// The slide `id`, if the folder held it at the last scan.
    pub(crate) fn get(&self, id: &str) -> rusqlite::Result<Option<Entry>> {
        self.db
            .query_row(
                "SELECT id, name, file, bytes, modified, width, height, levels, mpp_x, mpp_y,
                        objective, vendor, error
                 FROM slides WHERE id = ?1 AND present = 1",
                [id],
                entry,
            )
            .optional()
    }

    /// Records a scan: `found` is every slide in the folder now; the others are marked absent
    /// (kept, so that their analyses still name them).
    pub(crate) fn record_scan(&mut self, found: &[Entry]) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        tx.execute("UPDATE slides SET present = 0", [])?;
        for e in found {
            let d = e.described.as_ref().ok();
            tx.execute(
                "INSERT INTO slides (id, name, file, bytes, modified, width, height, levels,
                                     mpp_x, mpp_y, objective, vendor, error, present)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1)
                 ON CONFLICT(id) DO UPDATE SET name = ?2, file = ?3, bytes = ?4, modified = ?5,
                    width = ?6, height = ?7, levels = ?8, mpp_x = ?9, mpp_y = ?10,
                    objective = ?11, vendor = ?12, error = ?13, present = 1",
                params![
                    e.id,
                    e.name,
                    e.file,
                    e.stamp.bytes as i64,
                    e.stamp.modified,
                    d.map(|d| d.width as i64),
                    d.map(|d| d.height as i64),
                    d.map(|d| d.levels),
                    d.and_then(|d| d.mpp).map(|m| m.0),
                    d.and_then(|d| d.mpp).map(|m| m.1),
                    d.and_then(|d| d.objective),
                    d.map(|d| d.vendor.clone()),
                    e.described.as_ref().err(),
                ],
            )?;
        }
        tx.commit()
    }

    /// What the catalogue knew of `name` when its file had `stamp`, if it did.
    pub(crate) fn known(&self, name: &str, stamp: Stamp) -> rusqlite::Result<Option<Entry>> {
        self.db
            .query_row(
                "SELECT id, name, file, bytes, modified, width, height, levels, mpp_x, mpp_y,
                        objective, vendor, error
                 FROM slides WHERE name = ?1 AND bytes = ?2 AND modified = ?3",
                params![name, stamp.bytes as i64, stamp.modified],
                entry,
            )
            .optional()
    }
}

/// An analysis as the catalogue holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct AnalysisRow {
    pub(crate) id: String,
    /// The slide's id.
    pub(crate) slide: String,
    /// `name` or `name/version`, as asked for.
    pub(crate) model: String,
    /// The request as JSON.
    pub(crate) request: String,
    /// queued, running, done, failed or cancelled.
    pub(crate) status: String,
    /// Windows analysed and in all, as last recorded.
    pub(crate) progress: Option<(u64, u64)>,
    pub(crate) error: Option<String>,
    /// The slide's record as JSON (done, and failed with a summary).
    pub(crate) record: Option<String>,
    pub(crate) created: String,
    pub(crate) started: Option<String>,
    pub(crate) finished: Option<String>,
}

const ANALYSIS_COLUMNS: &str = "id, slide, model, request, status, windows_done, windows, error, \
    record, created, started, finished";

fn analysis(row: &rusqlite::Row<'_>) -> rusqlite::Result<AnalysisRow> {
    let progress = match (row.get::<_, Option<i64>>(5)?, row.get::<_, Option<i64>>(6)?) {
        (Some(done), Some(all)) => Some((done as u64, all as u64)),
        _ => None,
    };
    Ok(AnalysisRow {
        id: row.get(0)?,
        slide: row.get(1)?,
        model: row.get(2)?,
        request: row.get(3)?,
        status: row.get(4)?,
        progress,
        error: row.get(7)?,
        record: row.get(8)?,
        created: row.get(9)?,
        started: row.get(10)?,
        finished: row.get(11)?,
    })
}

impl Catalogue {
    /// Records a new analysis, queued.
    pub(crate) fn add_analysis(&self, a: &AnalysisRow) -> rusqlite::Result<()> {
        self.db.execute(
            &format!("INSERT INTO analyses ({ANALYSIS_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, NULL, NULL, ?6, NULL, NULL)"),
            params![a.id, a.slide, a.model, a.request, a.status, a.created],
        )?;
        Ok(())
    }

    /// Records where an analysis stands: its status, progress, error, record and times.
    pub(crate) fn update_analysis(&self, a: &AnalysisRow) -> rusqlite::Result<()> {
        self.db.execute(
            "UPDATE analyses SET status = ?2, windows_done = ?3, windows = ?4, error = ?5,
                record = ?6, started = ?7, finished = ?8 WHERE id = ?1",
            params![
                a.id,
                a.status,
                a.progress.map(|p| p.0 as i64),
                a.progress.map(|p| p.1 as i64),
                a.error,
                a.record,
                a.started,
                a.finished
            ],
        )?;
        Ok(())
    }

    pub(crate) fn analysis(&self, id: &str) -> rusqlite::Result<Option<AnalysisRow>> {
        self.db
            .query_row(
                &format!("SELECT {ANALYSIS_COLUMNS} FROM analyses WHERE id = ?1"),
                [id],
                analysis,
            )
            .optional()
    }

    /// A slide's analyses, oldest first.
    pub(crate) fn analyses_of(&self, slide: &str) -> rusqlite::Result<Vec<AnalysisRow>> {
        let mut statement = self.db.prepare(&format!(
            "SELECT {ANALYSIS_COLUMNS} FROM analyses WHERE slide = ?1 ORDER BY created, id"
        ))?;
        let rows = statement.query_map([slide], analysis)?;
        rows.collect()
    }

    /// Analyses a stopped server left queued or running, oldest first.
    pub(crate) fn unfinished(&self) -> rusqlite::Result<Vec<AnalysisRow>> {
        let mut statement = self.db.prepare(&format!(
            "SELECT {ANALYSIS_COLUMNS} FROM analyses WHERE status IN ('queued', 'running')
             ORDER BY created, id"
        ))?;
        let rows = statement.query_map([], analysis)?;
        rows.collect()
    }
}

fn entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let error: Option<String> = row.get(12)?;
    let mpp = match (row.get::<_, Option<f64>>(8)?, row.get::<_, Option<f64>>(9)?) {
        (Some(x), Some(y)) => Some((x, y)),
        _ => None,
    };
    let described = match error {
        Some(why) => Err(why),
        None => Ok(Description {
            width: row.get::<_, Option<i64>>(5)?.unwrap_or(0) as u64,
            height: row.get::<_, Option<i64>>(6)?.unwrap_or(0) as u64,
            levels: row.get::<_, Option<u32>>(7)?.unwrap_or(1),
            mpp,
            objective: row.get(10)?,
            vendor: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
        }),
    };
    Ok(Entry {
        id: row.get(0)?,
        name: row.get(1)?,
        file: row.get(2)?,
        stamp: Stamp {
            bytes: row.get::<_, i64>(3)? as u64,
            modified: row.get(4)?,
        },
        described,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slide(name: &str, bytes: u64) -> Entry {
        Entry {
            id: format!("id-{name}"),
            name: name.into(),
            file: name.into(),
            stamp: Stamp { bytes, modified: 7 },
            described: Ok(Description {
                width: 2220,
                height: 2967,
                levels: 1,
                mpp: Some((0.499, 0.499)),
                objective: Some(20.0),
                vendor: "aperio".into(),
            }),
        }
    }

    #[test]
    fn a_scan_is_kept_across_reopening_and_absent_slides_are_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalogue.sqlite3");
        let mut broken = slide("broken.svs", 3);
        broken.described = Err("not a slide".into());
        {
            let mut catalogue = Catalogue::open(&path).unwrap();
            catalogue
                .record_scan(&[slide("a.svs", 10), broken.clone()])
                .unwrap();
        }
        let mut catalogue = Catalogue::open(&path).unwrap();
        assert_eq!(catalogue.get("id-a.svs").unwrap(), Some(slide("a.svs", 10)));
        assert_eq!(
            catalogue.get("id-broken.svs").unwrap(),
            Some(broken.clone())
        );
        let stamp = Stamp {
            bytes: 10,
            modified: 7,
        };
        assert!(catalogue.known("a.svs", stamp).unwrap().is_some());
        let changed = Stamp {
            bytes: 11,
            modified: 7,
        };
        assert!(catalogue.known("a.svs", changed).unwrap().is_none());
        catalogue.record_scan(&[broken.clone()]).unwrap();
        assert_eq!(catalogue.get("id-broken.svs").unwrap(), Some(broken));
        assert_eq!(catalogue.get("id-a.svs").unwrap(), None);
    }
}
