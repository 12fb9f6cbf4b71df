//! Slide analyses as jobs (`POST /slides/{id}/analyses`): each one a `predict --tile` of a slide
//! of the folder with a served model, run by one thread, one analysis at a time, oldest first, its
//! windows through the model's own workers (`queued`), its files (heatmap, regions, lesions,
//! windows) in `.scancer/analyses/<id>/`, its state in the catalogue. A restart resumes what was
//! queued or running; what finished is kept.

mod overlay;
pub(crate) mod request;

use super::catalogue::AnalysisRow;
use super::queued::Queued;
use super::{Entry, Library, SlideError, STATE_DIR};
use crate::engine::postprocess::Postprocessor;
use crate::inputs::{Input, Source};
use crate::records::{Answer, OutputKind, Schema};
use crate::serve::models::ServedModel;
use crate::slide::exports::Format;
use crate::slide::tiles::TileWriter;
use crate::slide::{Files, Slides};
pub(crate) use overlay::{OverlayCache, Windows};
use request::AnalysisRequest;
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

/// The models an analysis may run through, as the server has them now.
pub(crate) trait ServedModels: Send + Sync {
    /// The model a request names (its default version without one), or why it is not served.
    fn served(&self, name: &str, version: Option<&str>) -> Result<Arc<ServedModel>, String>;
    /// The server is stopping: an analysis cut short is run again at the next start.
    fn stopping(&self) -> bool;
}

/// An analysis' files, by the name its results endpoint gives them.
pub(crate) const RESULTS: [(&str, &str, &str); 5] = [
    ("heatmap.png", "heatmap.png", "image/png"),
    ("geojson", "regions.geojson", "application/geo+json"),
    ("asap.xml", "regions.xml", "application/xml"),
    ("lesions.csv", "lesions.csv", "text/csv"),
    ("tiles.csv", "tiles.csv", "text/csv"),
];

/// Why an analysis request was not taken, or a result not given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnalysisError {
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Slide(#[from] SlideError),
    #[error("no analysis {0}")]
    NoSuchAnalysis(String),
    #[error("analysis {id} is {status}: {why}")]
    NotReady {
        id: String,
        status: String,
        why: &'static str,
    },
    #[error("analysis {0} has finished; finished analyses are kept")]
    Finished(String),
    #[error("{0}")]
    Model(String),
    #[error("{0}")]
    Catalogue(String),
}

/// The analyses of one slide folder.
pub(crate) struct Analyses {
    library: Arc<Library>,
    jobs: Mutex<Jobs>,
    wake: Condvar,
    pub(crate) overlays: OverlayCache,
}

#[derive(Default)]
struct Jobs {
    queued: VecDeque<String>,
    /// The analysis running, and its cancel flag.
    running: Option<(String, Arc<AtomicBool>)>,
    /// Windows done and in all, of the one running.
    progress: HashMap<String, (u64, u64)>,
    /// The thread that runs them has been started.
    started: bool,
}

/// A record whose file paths (in the analysis' folder) are the API's addresses of those files.
fn as_served(mut record: Value, id: &str, folder: &std::path::Path) -> Value {
    let address = |path: &Value| -> Value {
        let Some(path) = path.as_str() else {
            return path.clone();
        };
        let file = std::path::Path::new(path)
            .strip_prefix(folder)
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        match RESULTS.iter().find(|(_, stored, _)| *stored == file) {
            Some((name, _, _)) => json!(format!("/analyses/{id}/{name}")),
            None => json!(format!("/analyses/{id}/{file}")),
        }
    };
    let slide = &mut record["slide"];
    if slide.is_object() {
        slide["heatmap"] = address(&slide["heatmap"]);
        if let Some(exports) = slide["exports"].as_object_mut() {
            for value in exports.values_mut() {
                *value = address(value);
            }
        }
        if let Some(classes) = slide["classes"].as_array_mut() {
            for class in classes {
                if class.get("heatmap").is_some() {
                    class["heatmap"] = address(&class["heatmap"]);
                }
            }
        }
    }
    record
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Analyses {
    pub(crate) fn new(library: Arc<Library>) -> Analyses {
        Analyses {
            library,
            jobs: Mutex::new(Jobs::default()),
            wake: Condvar::new(),
            overlays: OverlayCache::default(),
        }
    }

    fn catalogue<T>(
        &self,
        what: impl FnOnce(&super::catalogue::Catalogue) -> rusqlite::Result<T>,
    ) -> Result<T, AnalysisError> {
        let catalogue = self.library.catalogue.lock().expect("catalogue lock");
        what(&catalogue).map_err(|e| AnalysisError::Catalogue(format!("the slide catalogue: {e}")))
    }

    /// The folder of an analysis' files.
    pub(crate) fn folder(&self, id: &str) -> PathBuf {
        self.library.dir().join(STATE_DIR).join("analyses").join(id)
    }

    /// Queues an analysis of slide `slide` (checked against the served models now, run later).
    pub(crate) fn submit(
        self: &Arc<Self>,
        app: &Arc<dyn ServedModels>,
        slide: &str,
        body: &[u8],
    ) -> Result<Value, AnalysisError> {
        let request = AnalysisRequest::parse(body).map_err(AnalysisError::Request)?;
        let entry = self.library.entry(slide)?;
        if let Err(why) = &entry.described {
            return Err(SlideError::Unreadable {
                name: entry.name,
                why: why.clone(),
            }
            .into());
        }
        let model = app
            .served(&request.model, request.version.as_deref())
            .map_err(AnalysisError::Model)?;
        if let Some(class) = &request.class {
            if !model.labels.contains(class) {
                return Err(AnalysisError::Request(format!(
                    "class {class:?}: model {} has the classes {}",
                    model.name,
                    model.labels.join(", ")
                )));
            }
        }
        let row = AnalysisRow {
            id: crate::serve::ids::uuid4(),
            slide: entry.id.clone(),
            model: request.model_ref(),
            request: serde_json::to_string(&request).expect("plain data"),
            status: "queued".into(),
            progress: None,
            error: None,
            record: None,
            created: now(),
            started: None,
            finished: None,
        };
        self.catalogue(|c| c.add_analysis(&row))?;
        self.enqueue(app, row.id.clone());
        Ok(self.describe(&row, &entry.name))
    }

    /// Queues an analysis; the first starts the thread that runs them (within the server's
    /// runtime, whose handle it keeps for the workers' answers).
    fn enqueue(self: &Arc<Self>, app: &Arc<dyn ServedModels>, id: String) {
        let mut jobs = self.jobs.lock().expect("jobs lock");
        jobs.queued.push_back(id);
        if !jobs.started {
            jobs.started = true;
            let (analyses, app) = (Arc::clone(self), Arc::downgrade(app));
            let runtime = tokio::runtime::Handle::current();
            std::thread::Builder::new()
                .name("scancer-analyses".into())
                .spawn(move || analyses.work(app, runtime))
                .expect("cannot start the analysis thread");
        }
        drop(jobs);
        self.wake.notify_all();
    }

    /// Queues again what a stopped server left queued or running, oldest first.
    pub(crate) fn resume(
        self: &Arc<Self>,
        app: &Arc<dyn ServedModels>,
    ) -> Result<usize, AnalysisError> {
        let unfinished = self.catalogue(|c| c.unfinished())?;
        for mut row in unfinished.iter().cloned() {
            row.status = "queued".into();
            row.progress = None;
            row.started = None;
            self.catalogue(|c| c.update_analysis(&row))?;
            self.enqueue(app, row.id);
        }
        Ok(unfinished.len())
    }

    /// The analysis as `GET /analyses/{id}` answers it.
    pub(crate) fn get(&self, id: &str) -> Result<Value, AnalysisError> {
        let row = self.row(id)?;
        let name = self
            .library
            .entry(&row.slide)
            .map(|e| e.name)
            .unwrap_or_default();
        Ok(self.describe(&row, &name))
    }

    fn row(&self, id: &str) -> Result<AnalysisRow, AnalysisError> {
        self.catalogue(|c| c.analysis(id))?
            .ok_or_else(|| AnalysisError::NoSuchAnalysis(id.to_string()))
    }

    /// A slide's analyses, oldest first, as `GET /slides` lists them.
    pub(crate) fn of_slide(&self, slide: &str) -> Result<Vec<Value>, AnalysisError> {
        let rows = self.catalogue(|c| c.analyses_of(slide))?;
        Ok(rows
            .iter()
            .map(|row| {
                json!({
                    "id": row.id, "model": row.model, "status": self.status(row).0,
                    "created": row.created,
                })
            })
            .collect())
    }

    /// The status and progress, the running one's live.
    fn status(&self, row: &AnalysisRow) -> (String, Option<(u64, u64)>) {
        let jobs = self.jobs.lock().expect("jobs lock");
        match &jobs.running {
            Some((id, cancelled)) if *id == row.id => {
                let status = if cancelled.load(Ordering::SeqCst) {
                    "cancelling"
                } else {
                    "running"
                };
                (status.into(), jobs.progress.get(id).copied())
            }
            _ => (row.status.clone(), row.progress),
        }
    }

    fn describe(&self, row: &AnalysisRow, slide_name: &str) -> Value {
        let (status, progress) = self.status(row);
        let request: Value = serde_json::from_str(&row.request).unwrap_or(Value::Null);
        let record: Value = row
            .record
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok())
            .unwrap_or(Value::Null);
        let results: serde_json::Map<String, Value> = if status == "done" {
            RESULTS
                .iter()
                .filter(|(_, file, _)| self.folder(&row.id).join(file).exists())
                .map(|(name, _, _)| {
                    (
                        (*name).to_string(),
                        json!(format!("/analyses/{}/{name}", row.id)),
                    )
                })
                .chain([
                    (
                        "regions".to_string(),
                        json!(format!("/analyses/{}/regions", row.id)),
                    ),
                    (
                        "overlay.dzi".to_string(),
                        json!(format!("/analyses/{}/overlay.dzi", row.id)),
                    ),
                ])
                .collect()
        } else {
            serde_json::Map::new()
        };
        json!({
            "id": row.id,
            "slide": row.slide,
            "slide_name": slide_name,
            "model": row.model,
            "request": request,
            "status": status,
            "progress": progress.map(|(done, all)| json!({"windows_done": done, "windows": all})),
            "created": row.created,
            "started": row.started,
            "finished": row.finished,
            "error": row.error,
            "record": record,
            "results": results,
        })
    }

    /// `DELETE /analyses/{id}`: a queued analysis is cancelled at once, a running one as soon as
    /// its current batch returns; a finished one is kept.
    pub(crate) fn cancel(&self, id: &str) -> Result<Value, AnalysisError> {
        let mut row = self.row(id)?;
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if let Some((running, cancelled)) = &jobs.running {
            if running == id {
                cancelled.store(true, Ordering::SeqCst);
                drop(jobs);
                return self.get(id);
            }
        }
        match jobs.queued.iter().position(|q| q == id) {
            Some(at) => {
                jobs.queued.remove(at);
                drop(jobs);
                row.status = "cancelled".into();
                row.finished = Some(now());
                self.catalogue(|c| c.update_analysis(&row))?;
                self.get(id)
            }
            None => Err(AnalysisError::Finished(id.to_string())),
        }
    }

    /// A finished analysis' file, with its content type.
    pub(crate) fn result(
        &self,
        id: &str,
        name: &str,
    ) -> Result<(PathBuf, &'static str), AnalysisError> {
        let row = self.row(id)?;
        self.finished(&row)?;
        let missing = || AnalysisError::NoSuchAnalysis(format!("{id}/{name}"));
        if let Some((_, file, content_type)) = RESULTS.iter().find(|(n, _, _)| *n == name) {
            return Ok((self.folder(id).join(file), content_type));
        }
        // A multiclass analysis without a class has a heatmap per class: heatmap.<label>.png.
        let per_class = name.starts_with("heatmap.")
            && name.ends_with(".png")
            && !name.contains(['/', '\\'])
            && !name.contains("..");
        let path = self.folder(id).join(name);
        if per_class && path.is_file() {
            return Ok((path, "image/png"));
        }
        Err(missing())
    }

    /// Checks that an analysis has its results.
    pub(crate) fn finished(&self, row: &AnalysisRow) -> Result<(), AnalysisError> {
        let (status, _) = self.status(row);
        if status == "done" {
            return Ok(());
        }
        Err(AnalysisError::NotReady {
            id: row.id.clone(),
            status,
            why: "results come once it is done",
        })
    }

    pub(crate) fn done_row(&self, id: &str) -> Result<AnalysisRow, AnalysisError> {
        let row = self.row(id)?;
        self.finished(&row)?;
        Ok(row)
    }

    /// The analysis thread: one analysis at a time, oldest first, until the server goes.
    fn work(self: Arc<Self>, app: Weak<dyn ServedModels>, runtime: tokio::runtime::Handle) {
        loop {
            let (id, cancelled) = {
                let mut jobs = self.jobs.lock().expect("jobs lock");
                loop {
                    if let Some(id) = jobs.queued.pop_front() {
                        let cancelled = Arc::new(AtomicBool::new(false));
                        jobs.running = Some((id.clone(), Arc::clone(&cancelled)));
                        break (id, cancelled);
                    }
                    jobs = self.wake.wait(jobs).expect("jobs lock");
                }
            };
            let Some(app) = app.upgrade() else { return };
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run(&app, &runtime, &id, &cancelled)
            }));
            let stopping = app.stopping();
            let mut jobs = self.jobs.lock().expect("jobs lock");
            let progress = jobs.progress.remove(&id);
            jobs.running = None;
            drop(jobs);
            // A server stopping mid-analysis leaves it running: the next start runs it again.
            if stopping {
                continue;
            }
            let finished = match outcome {
                Ok(Ok(row)) => Ok(row),
                Ok(Err(why)) => self.failed(&id, why, progress),
                Err(_) => self.failed(
                    &id,
                    "the analysis crashed (a bug, please report it)".into(),
                    progress,
                ),
            };
            if let Err(e) = finished.and_then(|row| self.catalogue(|c| c.update_analysis(&row))) {
                crate::messages::warning!("analysis {id}: {e}");
            }
        }
    }

    /// The analysis' row, failed with `why`.
    fn failed(
        &self,
        id: &str,
        why: String,
        progress: Option<(u64, u64)>,
    ) -> Result<AnalysisRow, AnalysisError> {
        let mut row = self.row(id)?;
        row.status = "failed".into();
        row.error = Some(why);
        row.progress = progress.or(row.progress);
        row.finished = Some(now());
        Ok(row)
    }

    /// Runs one analysis: its row as it finished (done, failed with a record, or cancelled), or
    /// why it could not run.
    fn run(
        &self,
        app: &Arc<dyn ServedModels>,
        runtime: &tokio::runtime::Handle,
        id: &str,
        cancelled: &Arc<AtomicBool>,
    ) -> Result<AnalysisRow, String> {
        let mut row = self.row(id).map_err(|e| e.to_string())?;
        let request: AnalysisRequest =
            serde_json::from_str(&row.request).map_err(|e| format!("the stored request: {e}"))?;
        let entry = self.library.entry(&row.slide).map_err(|e| e.to_string())?;
        let model = app.served(&request.model, request.version.as_deref())?;
        row.status = "running".into();
        row.started = Some(now());
        self.catalogue(|c| c.update_analysis(&row))
            .map_err(|e| e.to_string())?;
        let mut config = model.config.clone();
        if let Some(t) = request.threshold {
            config.output.threshold = Some(t);
        }
        let queued = Queued {
            postprocessor: Postprocessor::new(&config),
            config,
            share: Queued::share_of(&model),
            runtime: runtime.clone(),
            cancelled: Arc::clone(cancelled),
            model: Arc::clone(&model),
        };
        let folder = self.folder(id);
        // A resumed analysis starts again from nothing.
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder)
            .map_err(|e| format!("{}: {}", folder.display(), crate::messages::io_message(&e)))?;
        let answer = self.predict(&queued, &request, &entry, &folder)?;
        let (outcome, summary) = answer;
        let schema = Schema {
            kind: model.schema.kind,
            classes: model.schema.classes.clone(),
        };
        let record = crate::records::slide_record(
            &schema,
            &Answer {
                path: &entry.name,
                outcome: &outcome,
                mask_file: None,
                slide: summary.as_ref(),
            },
        );
        row.progress = self
            .jobs
            .lock()
            .expect("jobs lock")
            .progress
            .get(id)
            .copied();
        row.finished = Some(now());
        row.record = Some(as_served(record, id, &folder).to_string());
        match &outcome {
            crate::records::Outcome::Predicted(_) => row.status = "done".into(),
            crate::records::Outcome::Failed(why)
                if why == "cancelled" && cancelled.load(Ordering::SeqCst) =>
            {
                row.status = "cancelled".into();
                row.record = None;
            }
            crate::records::Outcome::Failed(why) => {
                row.status = "failed".into();
                row.error = Some(why.clone());
            }
        }
        Ok(row)
    }

    /// The slide through `predict --tile`'s own path, its files in `folder`: the outcome and the
    /// summary.
    fn predict(
        &self,
        model: &Queued,
        request: &AnalysisRequest,
        entry: &Entry,
        folder: &std::path::Path,
    ) -> Result<(crate::records::Outcome, Option<crate::records::Summary>), String> {
        let item = Ok(Input {
            display: entry.name.clone(),
            source: Source::File(self.library.dir().join(&entry.file)),
        });
        let kind = model.model.schema.kind;
        let classes = match kind {
            OutputKind::Binary | OutputKind::Multiclass => model.model.labels.clone(),
            OutputKind::Segmentation | OutputKind::Raw => Vec::new(),
        };
        let tiles = TileWriter::create(&folder.join("tiles.csv"), &[], true, classes)
            .map_err(|e| format!("tiles.csv: {}", crate::messages::io_message(&e)))?;
        let heatmaps = [Some(folder.join("heatmap.png"))];
        let exports = [vec![
            (Format::GeoJson, folder.join("regions.geojson")),
            (Format::AsapXml, folder.join("regions.xml")),
            (Format::LesionsCsv, folder.join("lesions.csv")),
        ]];
        let masks = (kind == OutputKind::Segmentation).then(|| vec![Some(folder.join("mask.png"))]);
        let files = Files {
            heatmaps: &heatmaps,
            exports: &exports,
            explanations: &[None],
            masks: &masks,
        };
        let id = folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let report = |done: usize, total: usize| {
            let mut jobs = self.jobs.lock().expect("jobs lock");
            jobs.progress
                .insert(id.clone(), (done as u64, total as u64));
            !model.cancelled.load(Ordering::SeqCst)
        };
        let slides = Slides {
            engine: model,
            identity: &model.model.identity,
            options: &request.slide_options(),
            heatmap: &request.heatmap_options(),
            max_pixels: self.library.max_pixels,
            quiet: true,
            report: &report,
        };
        let mut answer = None;
        slides
            .predict_each(
                std::slice::from_ref(&item),
                &files,
                Some(tiles),
                &mut |_, outcome, summary| {
                    answer = Some((outcome, summary));
                    Ok(())
                },
            )
            .map_err(|e| {
                format!(
                    "cannot write the results: {}",
                    crate::messages::io_message(&e)
                )
            })?;
        answer.ok_or_else(|| "the slide gave no answer".to_string())
    }
}
