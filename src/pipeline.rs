//! Batched inference over many inputs: decoding and preprocessing run on worker threads, batches on
//! the engine's lanes side by side, and results come out in input order.
//!
//! Worker `w` of `W` handles inputs `w, w + W, w + 2W, ...` and sends them on its own bounded channel;
//! the calling thread reads input `i` from channel `i % W`, so order is kept without a reorder
//! buffer and memory is bounded by the channel capacity. Full batches go to the lanes, whose answers
//! come back in order (`Engine::run_ordered`). Inputs that fail before the model wait in line with
//! the batch being filled, so every forward pass is full and records still come out in order.

use crate::engine::decode::InputError;
use crate::engine::preprocess::{Prepared, Preprocessor};
use crate::engine::{Engine, EngineError};
use crate::inputs::{listed, read_stdin, Item, ReadError, Source};
use crate::records::Outcome;
use std::io::{self, BufReader};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Standard input is read whole; this bounds it (the decoder limits bound the pixels).
const MAX_STDIN_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Copy)]
pub(crate) struct PipelineOptions {
    pub(crate) batch_size: usize,
    pub(crate) decode_threads: usize,
}

/// Decode threads are named with this prefix (their decoders run under `decoding`, so a panic is
/// that input's error record and the panic hook stays quiet).
pub(crate) const DECODE_THREAD: &str = "scancer-decode-";

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

thread_local! {
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a panic on this thread becomes an input's error record (the panic hook stays quiet).
pub(crate) fn panic_is_caught() -> bool {
    CATCHING.with(std::cell::Cell::get)
}

/// A decoder panicked on an input (a bug): that input's error, not the run's.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the image decoder crashed on this file ({0})")]
pub(crate) struct DecoderCrashed(String);

/// Runs a decoder over one input: a decoder bug costs that input, not the run.
pub(crate) fn decoding<T, E: From<DecoderCrashed>>(
    f: impl FnOnce() -> Result<T, E>,
) -> Result<T, E> {
    let was = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.unwrap_or_else(|payload| Err(DecoderCrashed(panic_text(&*payload)).into()))
}

/// Why an input did not become a model input: its error record.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PrepareError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{0} is a whole-slide format: predict it with --tile, through OpenSlide ({note})", note = crate::inputs::OPENSLIDE_NOTE)]
    WholeSlide(String),
    /// Larger than a patch: most likely a slide or a scan region.
    #[error("{0}; to cut a whole slide into windows of the model's input, add --tile")]
    NotAPatch(InputError),
    #[error(transparent)]
    Input(InputError),
    #[error(transparent)]
    Crashed(#[from] DecoderCrashed),
}

impl From<InputError> for PrepareError {
    fn from(error: InputError) -> PrepareError {
        match error {
            InputError::WrongSize { .. } | InputError::TooLarge { .. } => {
                PrepareError::NotAPatch(error)
            }
            error => PrepareError::Input(error),
        }
    }
}

/// Decoding under way on worker threads, waiting for a model. Starting it before the model loads
/// overlaps the model's start-up with the first batches' decoding.
pub(crate) struct Decoding {
    receivers: Vec<Receiver<Result<Prepared, PrepareError>>>,
    len: usize,
}

/// Starts the decode workers. Dropping the result stops them.
pub(crate) fn start(
    pre: Arc<Preprocessor>,
    items: Arc<[Item]>,
    options: PipelineOptions,
) -> Decoding {
    let workers = options.decode_threads.clamp(1, items.len().max(1));
    let batch_size = options.batch_size.max(1);
    let receivers = (0..workers)
        .map(|w| {
            let (tx, rx) = sync_channel(batch_size);
            let (pre, items) = (Arc::clone(&pre), Arc::clone(&items));
            std::thread::Builder::new()
                .name(format!("{DECODE_THREAD}{w}"))
                .spawn(move || {
                    for item in items.iter().skip(w).step_by(workers) {
                        let prepared = decoding(|| prepare(&pre, item));
                        // A send error means the model thread stopped early: nothing left to do.
                        if tx.send(prepared).is_err() {
                            return;
                        }
                    }
                })
                .expect("cannot start a decode thread");
            rx
        })
        .collect();
    Decoding {
        receivers,
        len: items.len(),
    }
}

/// A batch on its way through a lane: every pending input (index, prepared or its error), then
/// the answers of the prepared ones.
type Pending = Vec<(usize, Result<Prepared, PrepareError>)>;

impl Decoding {
    /// Runs the decoded inputs through `engine`, its lanes side by side, calling
    /// `emit(index, outcome)` once per input, in order.
    pub(crate) fn finish<E>(self, engine: &Engine, mut emit: E) -> io::Result<()>
    where
        E: FnMut(usize, Outcome, Option<&Prepared>) -> io::Result<()>,
    {
        let workers = self.receivers.len();
        let batch = engine.batch_size();
        let answer = |lane: usize, pending: Pending| {
            let images: Vec<&Prepared> = pending
                .iter()
                .filter_map(|(_, p)| p.as_ref().ok())
                .collect();
            let answers = engine.infer_each(lane, &images);
            (pending, answers)
        };
        engine.run_ordered(answer, |lanes| {
            let mut pending: Pending = Vec::with_capacity(batch);
            let mut ready = 0;
            for i in 0..self.len {
                let prepared = self.receivers[i % workers]
                    .recv()
                    .expect("decode worker ended early");
                ready += usize::from(prepared.is_ok());
                pending.push((i, prepared));
                if ready == batch {
                    lanes.submit(std::mem::replace(&mut pending, Vec::with_capacity(batch)));
                    ready = 0;
                }
                while let Some((done, answers)) = lanes.ready() {
                    emit_all(done, answers, &mut emit)?;
                }
            }
            if !pending.is_empty() {
                lanes.submit(pending);
            }
            while let Some((done, answers)) = lanes.wait() {
                emit_all(done, answers, &mut emit)?;
            }
            Ok(())
        })
    }
}

fn prepare(pre: &Preprocessor, item: &Item) -> Result<Prepared, PrepareError> {
    Ok(match &listed(item)?.source {
        Source::File(path) => {
            if let Some(kind) = crate::inputs::vendor_format(path) {
                return Err(PrepareError::WholeSlide(kind));
            }
            let file = std::fs::File::open(path).map_err(ReadError::File)?;
            pre.prepare_from(BufReader::new(file))?
        }
        Source::Dicom(_) => return Err(PrepareError::WholeSlide("DICOM".into())),
        Source::Stdin => pre.prepare(&read_stdin(MAX_STDIN_BYTES)?)?,
    })
}

/// Emits every input of a batch in order, with its answer, or its error from before the model.
fn emit_all<E>(
    pending: Pending,
    answers: Vec<Result<crate::records::Prediction, EngineError>>,
    emit: &mut E,
) -> io::Result<()>
where
    E: FnMut(usize, Outcome, Option<&Prepared>) -> io::Result<()>,
{
    let mut answers = answers
        .into_iter()
        .map(|answer| answer.map_or_else(|e| Outcome::Failed(e.to_string()), Outcome::Predicted));
    for (i, prepared) in pending {
        match prepared {
            Ok(input) => {
                let outcome = answers.next().expect("one answer per prepared input");
                emit(i, outcome, Some(&input))?;
            }
            Err(error) => emit(i, Outcome::Failed(error.to_string()), None)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decoder_panic_is_that_inputs_error() {
        let caught: Result<(), PrepareError> = decoding(|| panic!("index out of bounds"));
        let message = caught.unwrap_err().to_string();
        assert!(
            message.starts_with("the image decoder crashed on this file (index out of bounds"),
            "{message}"
        );
        assert!(!panic_is_caught(), "only while decoding");
        assert_eq!(decoding::<_, DecoderCrashed>(|| Ok(7)), Ok(7));
    }

    #[test]
    fn inputs_larger_than_a_patch_are_pointed_to_tile() {
        let wrong = InputError::WrongSize {
            width: 512,
            height: 512,
            want_width: 96,
            want_height: 96,
        };
        assert_eq!(
            PrepareError::from(wrong).to_string(),
            "image is 512x512 but the model takes 96x96 (the handler configuration sets resize = \"reject\"); to cut a whole slide into windows of the model's input, add --tile"
        );
        assert_eq!(
            PrepareError::from(InputError::Empty).to_string(),
            "empty file"
        );
        let dir = tempfile::tempdir().unwrap();
        let slide = dir.path().join("a.svs");
        std::fs::write(&slide, b"x").unwrap();
        let config = crate::engine::handler_config::HandlerConfig::from_toml(
            "[input]\nheight = 96\nwidth = 96\n[output]\nkind = \"binary\"\n",
        )
        .unwrap();
        let pre = Preprocessor::new(&config, 1 << 20);
        let item = Ok(crate::inputs::Input {
            display: "a.svs".into(),
            source: Source::File(slide),
        });
        let error = prepare(&pre, &item).unwrap_err();
        assert!(
            matches!(&error, PrepareError::WholeSlide(kind) if kind == "SVS"),
            "{error}"
        );
        assert!(error.to_string().starts_with(
            "SVS is a whole-slide format: predict it with --tile, through OpenSlide ("
        ));
    }
}
