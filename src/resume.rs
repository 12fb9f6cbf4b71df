//! `predict --resume`: what an interrupted run already wrote. The records of an output (or of its
//! `.partial`) are read back in order and matched against the inputs; the bytes up to the last
//! complete record that matches are kept, and the run goes on from the next input, so that the
//! finished output equals one uninterrupted run byte for byte.

use crate::output_file::{partial_of, Target};
use crate::records::{Format, Piece};
use serde_json::Value;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// Why a run cannot start on the outputs it was given, or go on from what they hold.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResumeError {
    /// Run without `--resume` over an interrupted run's `.partial`.
    #[error("{} holds the records of an interrupted run: add --resume to go on from them, or delete it to start again", .0.display())]
    Interrupted(PathBuf),
    #[error("--resume needs --output FILE (the file an interrupted run was writing)")]
    NoOutput,
    #[error("--resume needs --format json, jsonl or csv (a table cannot be read back)")]
    Table,
    #[error("{}", .path.display())]
    Target { path: PathBuf, source: io::Error },
    #[error("--resume: {} is not a regular file, so nothing can be resumed from it", .0.display())]
    NotRegular(PathBuf),
    #[error("{}: cannot read", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The records read are not this run's.
    #[error("--resume: {}: {mismatch}", .from.display())]
    Mismatch { from: PathBuf, mismatch: Mismatch },
    #[error("--resume: {}: its CSV header is not the one this command writes: it was written by another command or model", .0.display())]
    OtherHeader(PathBuf),
}

/// Why an output's records are not those of this run's inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Mismatch {
    /// Record `n` (from 1) is for `found`, where this run's input `n` is `expected`.
    #[error("its record {n} is for {found}, but this run's input {n} is {expected}: it was written for other inputs")]
    OtherInput {
        n: usize,
        found: String,
        expected: String,
    },
    /// More records than this run's inputs (how many).
    #[error(
        "it holds more records than this run has inputs ({0}): it was written for other inputs"
    )]
    MoreRecords(usize),
    #[error("--resume needs --format json, jsonl or csv (a table cannot be read back)")]
    Table,
}

/// Where a run writes: its records (`--output`; standard output when `None`) and its `--tiles`,
/// with whether those are CSV.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outputs<'a> {
    pub(crate) records: Option<&'a Path>,
    pub(crate) tiles: Option<(&'a Path, bool)>,
}

/// `--resume`: the records an earlier run of the same command left in the output.
#[derive(Debug)]
pub(crate) struct Resumed {
    /// The file they were read from (the `.partial`, or a finished output).
    pub(crate) from: PathBuf,
    bytes: Vec<u8>,
    pub(crate) recorded: Recorded,
    /// The `--tiles` bytes of the finished slides.
    pub(crate) tiles: Vec<u8>,
}

impl Resumed {
    /// Checks the outputs and `--resume` together; reads what an earlier run left (`None` without
    /// `--resume`). `paths`: this run's inputs as shown; `opens`: this run writes the start of the
    /// whole output (a CSV header).
    pub(crate) fn load(
        outputs: Outputs,
        format: Format,
        resume: bool,
        paths: &[&str],
        opens: bool,
    ) -> Result<Option<Resumed>, ResumeError> {
        if !resume {
            // Never start over on top of an interrupted run's records.
            let files = [outputs.records, outputs.tiles.map(|(path, _)| path)];
            for path in files.into_iter().flatten() {
                if let Some(partial) = Target::of(path).ok().and_then(|t| t.partial()) {
                    if partial.exists() {
                        return Err(ResumeError::Interrupted(partial));
                    }
                }
            }
            return Ok(None);
        }
        let output = outputs.records.ok_or(ResumeError::NoOutput)?;
        if format == Format::Table {
            return Err(ResumeError::Table);
        }
        let (from, bytes) = left_behind(output)?;
        let csv_header = format == Format::Csv && opens;
        let recorded = match recorded(format, &bytes, paths, csv_header) {
            Ok(recorded) => recorded,
            Err(mismatch) => return Err(ResumeError::Mismatch { from, mismatch }),
        };
        let tiles = match outputs.tiles {
            Some((path, csv)) => {
                let (_, bytes) = left_behind(path)?;
                let done: HashSet<&str> = paths[..recorded.records].iter().copied().collect();
                let keep = tiles_kept(&bytes, csv, csv && opens, &done);
                bytes[..keep].to_vec()
            }
            None => Vec::new(),
        };
        Ok(Some(Resumed {
            from,
            bytes,
            recorded,
            tiles,
        }))
    }

    /// Says, when there are any, how many of the run's `inputs` were recorded already, and where.
    pub(crate) fn note(&self, inputs: usize) {
        if self.recorded.records > 0 {
            crate::messages::note!(
                "resuming: {} of {inputs} input(s) already recorded in {}",
                self.recorded.records,
                self.from.display()
            );
        }
    }

    /// The piece this run writes after what was recorded: its records follow those, and the
    /// output's start (a header, an opening bracket) is not written twice.
    pub(crate) fn rest_of(&self, piece: Piece) -> Piece {
        Piece {
            before: piece.before + self.recorded.records,
            opens: piece.opens && !self.recorded.opened,
            closes: piece.closes,
        }
    }

    /// The bytes of records to keep. A CSV that holds its header must hold `header()`, the one
    /// this command writes.
    pub(crate) fn kept(
        &self,
        format: Format,
        header: impl FnOnce() -> Vec<u8>,
    ) -> Result<&[u8], ResumeError> {
        if self.recorded.opened && format == Format::Csv && !self.bytes.starts_with(&header()) {
            return Err(ResumeError::OtherHeader(self.from.clone()));
        }
        Ok(&self.bytes[..self.recorded.keep])
    }
}

/// What an interrupted run left for `path`: its `.partial`, else a finished file, else nothing.
fn left_behind(path: &Path) -> Result<(PathBuf, Vec<u8>), ResumeError> {
    let target = Target::of(path).map_err(|source| ResumeError::Target {
        path: path.to_owned(),
        source,
    })?;
    let Target::Regular { path: file, .. } = target else {
        return Err(ResumeError::NotRegular(path.to_owned()));
    };
    let partial = partial_of(&file);
    let from = if partial.exists() { partial } else { file };
    match std::fs::read(&from) {
        Ok(bytes) => Ok((from, bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((from, Vec::new())),
        Err(source) => Err(ResumeError::Read { path: from, source }),
    }
}

/// What an earlier run left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    /// Inputs already recorded: the first `records` of this run's inputs.
    pub(crate) records: usize,
    /// How many of them are error records.
    pub(crate) failed: usize,
    /// The bytes to keep (everything after is an incomplete record, or a closing bracket).
    pub(crate) keep: usize,
    /// Whether the kept bytes hold the header (CSV) or the opening bracket (JSON).
    pub(crate) opened: bool,
}

/// Reads `bytes` (written by `format`) against the inputs' paths, in order. `csv_header`: the piece
/// starts with a CSV header line (checked against the model's by the caller, `Recorded::opened`).
pub(crate) fn recorded(
    format: Format,
    bytes: &[u8],
    paths: &[&str],
    csv_header: bool,
) -> Result<Recorded, Mismatch> {
    let mut done = Recorded {
        records: 0,
        failed: 0,
        keep: 0,
        opened: false,
    };
    let matched =
        |done: &mut Recorded, path: &str, failed: bool, end: usize| match paths.get(done.records) {
            Some(&expected) if expected == path => {
                done.records += 1;
                done.failed += usize::from(failed);
                done.keep = end;
                Ok(())
            }
            Some(&expected) => Err(Mismatch::OtherInput {
                n: done.records + 1,
                found: path.to_owned(),
                expected: expected.to_owned(),
            }),
            None => Err(Mismatch::MoreRecords(paths.len())),
        };
    match format {
        Format::Table => return Err(Mismatch::Table),
        Format::Jsonl | Format::Json => {
            let mut at = 0;
            for line in bytes.split_inclusive(|&b| b == b'\n') {
                let start = at;
                at += line.len();
                let complete = line.ends_with(b"\n");
                let text = trim(line);
                if format == Format::Json {
                    // "[", "  {record},", ",  {record}" (a later shard's first), "]", "[]".
                    if text == b"[" {
                        done.opened = true;
                        done.keep = at;
                        continue;
                    }
                    if text == b"]" || text == b"[]" || text.is_empty() || text == b"," {
                        continue;
                    }
                } else if !complete {
                    break;
                }
                let body = text.strip_suffix(b",").unwrap_or(text);
                let body = body.strip_prefix(b",").unwrap_or(body);
                let Ok(Value::Object(record)) = serde_json::from_slice::<Value>(trim(body)) else {
                    break;
                };
                let Some(path) = record.get("path").and_then(Value::as_str) else {
                    break;
                };
                let failed = !record.get("error").is_none_or(Value::is_null);
                // A JSON array record ends at its closing brace; its separator comes with the next.
                let end = match format {
                    Format::Json => {
                        start + line.iter().rposition(|&b| b == b'}').map_or(0, |k| k + 1)
                    }
                    _ => at,
                };
                matched(&mut done, path, failed, end)?;
            }
            if format == Format::Json && done.records == 0 {
                // Nothing to keep: the writer opens the array again.
                done.keep = 0;
                done.opened = false;
            }
        }
        Format::Csv => {
            let mut rows = complete_rows(bytes);
            let mut columns = None;
            if csv_header {
                let Some((header, end)) = rows.next() else {
                    // Not even the header was finished.
                    return Ok(done);
                };
                columns = Some(header.len());
                done.opened = true;
                done.keep = end;
            }
            for (record, end) in rows {
                if columns.is_some_and(|n| n != record.len()) {
                    break;
                }
                let failed = record.iter().next_back().is_some_and(|e| !e.is_empty());
                matched(&mut done, record.get(0).unwrap_or_default(), failed, end)?;
            }
        }
    }
    Ok(done)
}

/// The bytes of a `--tiles` file to keep: its header (`header`: the file has one, as the shard
/// that opens the whole output writes it) and the rows of slides in `done`, up to the first row of
/// any other slide (the one that was interrupted).
pub(crate) fn tiles_kept(bytes: &[u8], csv: bool, header: bool, done: &HashSet<&str>) -> usize {
    let mut keep = 0;
    if csv {
        // The header, then rows while they belong to finished slides.
        for (k, (record, end)) in complete_rows(bytes).enumerate() {
            if (k > 0 || !header) && !done.contains(record.get(0).unwrap_or_default()) {
                break;
            }
            keep = end;
        }
        return keep;
    }
    let mut at = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            break;
        }
        let path = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("path").and_then(Value::as_str).map(str::to_owned));
        match path {
            Some(p) if done.contains(p.as_str()) => {}
            _ => break,
        }
        at += line.len();
        keep = at;
    }
    keep
}

/// The complete CSV rows of `bytes` (each ends with its line end), with the offset just past each;
/// an interrupted last row ends the list.
fn complete_rows(bytes: &[u8]) -> impl Iterator<Item = (csv::StringRecord, usize)> + '_ {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    std::iter::from_fn(move || {
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) => {
                let end = reader.position().byte() as usize;
                (end > 0 && bytes.get(end - 1) == Some(&b'\n')).then_some((record, end))
            }
            _ => None,
        }
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |k| k + 1);
    &bytes[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_keeps_complete_matching_lines() {
        let text = b"{\"path\":\"a\",\"error\":null}\n{\"path\":\"b\",\"error\":\"bad\"}\n{\"path\":\"c\",\"er";
        let r = recorded(Format::Jsonl, text, &["a", "b", "c"], false).unwrap();
        assert_eq!((r.records, r.failed), (2, 1));
        assert_eq!(r.keep, text.iter().rposition(|&b| b == b'\n').unwrap() + 1);
        let other = recorded(Format::Jsonl, text, &["a", "x"], false).unwrap_err();
        assert_eq!(
            other.to_string(),
            "its record 2 is for b, but this run's input 2 is x: it was written for other inputs"
        );
        assert_eq!(
            recorded(Format::Jsonl, text, &["a"], false).unwrap_err(),
            Mismatch::MoreRecords(1)
        );
    }

    #[test]
    fn json_array_resumes_before_the_separator() {
        let text = b"[\n  {\"path\":\"a\",\"error\":null},\n  {\"path\":\"b\",\"error\":null}\n]\n";
        let r = recorded(Format::Json, text, &["a", "b", "c"], false).unwrap();
        assert_eq!(r.records, 2);
        assert!(r.opened);
        assert!(text[..r.keep].ends_with(b"null}"));
        let cut = &text[..20];
        let r = recorded(Format::Json, cut, &["a", "b"], false).unwrap();
        assert_eq!((r.records, r.keep), (0, 0));
    }

    #[test]
    fn csv_keeps_whole_rows_after_the_header() {
        let text = b"path,label,error\na,x,\nb,,bad\nc,";
        let r = recorded(Format::Csv, text, &["a", "b", "c"], true).unwrap();
        assert_eq!((r.records, r.failed, r.keep), (2, 1, text.len() - 2));
        assert!(r.opened);
        assert_eq!(
            recorded(Format::Csv, b"path,la", &["a"], true)
                .unwrap()
                .keep,
            0
        );
        // A later shard's piece has no header.
        let r = recorded(Format::Csv, b"a,x,\n", &["a"], false).unwrap();
        assert_eq!((r.records, r.opened), (1, false));
    }

    #[test]
    fn tiles_stop_at_the_interrupted_slide() {
        let text = b"path,x\na,0\na,1\nb,0\nb,";
        let done: HashSet<&str> = ["a"].into();
        assert_eq!(tiles_kept(text, true, true, &done), 15);
        // A shard's file has no header: only the finished slides' rows, none of an interrupted
        // first slide.
        assert_eq!(tiles_kept(&text[7..], true, false, &done), 8);
        assert_eq!(
            tiles_kept(
                b"b,0
b,1
",
                true,
                false,
                &done
            ),
            0
        );
    }

    /// `Resumed::load` over `output` (JSON Lines, with `--tiles` beside it as CSV).
    fn load(dir: &Path, resume: bool, paths: &[&str]) -> Result<Option<Resumed>, ResumeError> {
        let (output, tiles) = (dir.join("out.jsonl"), dir.join("tiles.csv"));
        let outputs = Outputs {
            records: Some(&output),
            tiles: Some((&tiles, true)),
        };
        Resumed::load(outputs, Format::Jsonl, resume, paths, true)
    }

    #[test]
    fn a_run_goes_on_from_the_partial_only_with_resume() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("out.jsonl.partial");
        std::fs::write(
            &partial,
            b"{\"path\":\"a\",\"error\":null}\n{\"path\":\"b\"",
        )
        .unwrap();
        std::fs::write(dir.path().join("tiles.csv.partial"), b"path,x\na,0\nb,0\n").unwrap();
        let refused = load(dir.path(), false, &["a", "b"]).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "{} holds the records of an interrupted run: add --resume to go on from them, or delete it to start again",
                partial.display()
            )
        );
        let resumed = load(dir.path(), true, &["a", "b"]).unwrap().unwrap();
        assert_eq!(resumed.from, partial);
        assert_eq!((resumed.recorded.records, resumed.recorded.failed), (1, 0));
        assert_eq!(resumed.tiles, b"path,x\na,0\n");
        let rest = resumed.rest_of(Piece::WHOLE);
        assert_eq!((rest.before, rest.opens, rest.closes), (1, true, true));
        assert_eq!(
            resumed.kept(Format::Jsonl, Vec::new).unwrap(),
            b"{\"path\":\"a\",\"error\":null}\n"
        );
        let other = load(dir.path(), true, &["x"]).unwrap_err();
        assert!(
            matches!(
                &other,
                ResumeError::Mismatch {
                    mismatch: Mismatch::OtherInput { n: 1, .. },
                    ..
                }
            ),
            "{other}"
        );
        assert!(other.to_string().starts_with(&format!(
            "--resume: {}: its record 1 is for a",
            partial.display()
        )));
    }

    #[test]
    fn resume_needs_a_file_it_can_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let nothing = Outputs {
            records: None,
            tiles: None,
        };
        assert!(matches!(
            Resumed::load(nothing, Format::Jsonl, true, &[], true),
            Err(ResumeError::NoOutput)
        ));
        let output = dir.path().join("out.txt");
        let table = Outputs {
            records: Some(&output),
            tiles: None,
        };
        assert!(matches!(
            Resumed::load(table, Format::Table, true, &[], true),
            Err(ResumeError::Table)
        ));
        // Nothing written yet: an empty start.
        let fresh = load(dir.path(), true, &["a"]).unwrap().unwrap();
        assert_eq!((fresh.recorded.records, fresh.tiles.len()), (0, 0));
        assert!(load(dir.path(), false, &["a"]).unwrap().is_none());
        let special = Outputs {
            records: Some(Path::new("/dev/null")),
            tiles: None,
        };
        assert_eq!(
            Resumed::load(special, Format::Csv, true, &[], true)
                .unwrap_err()
                .to_string(),
            "--resume: /dev/null is not a regular file, so nothing can be resumed from it"
        );
    }

    #[test]
    fn a_csv_resumes_only_under_its_own_header() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out.csv");
        std::fs::write(&output, b"path,label,error\na,x,\n").unwrap();
        let outputs = Outputs {
            records: Some(&output),
            tiles: None,
        };
        let resumed = Resumed::load(outputs, Format::Csv, true, &["a", "b"], true)
            .unwrap()
            .unwrap();
        assert_eq!(resumed.from, output);
        let rest = resumed.rest_of(Piece::WHOLE);
        assert_eq!((rest.before, rest.opens, rest.closes), (1, false, true));
        assert_eq!(
            resumed
                .kept(Format::Csv, || b"path,label,error\n".to_vec())
                .unwrap(),
            b"path,label,error\na,x,\n"
        );
        assert_eq!(
            resumed.kept(Format::Csv, || b"path,score,error\n".to_vec()).unwrap_err().to_string(),
            format!(
                "--resume: {}: its CSV header is not the one this command writes: it was written by another command or model",
                output.display()
            )
        );
    }
}
