//! `predict --resume`: what an interrupted run already wrote. The records of an output (or of its
//! `.partial`) are read back in order and matched against the inputs; the bytes up to the last
//! complete record that matches are kept, and the run goes on from the next input, so that the
//! finished output equals one uninterrupted run byte for byte.

use crate::records::Format;
use serde_json::Value;
use std::collections::HashSet;

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
) -> Result<Recorded, String> {
    let mut done = Recorded {
        records: 0,
        failed: 0,
        keep: 0,
        opened: false,
    };
    let matched = |done: &mut Recorded, path: &str, failed: bool, end: usize| {
        match paths.get(done.records) {
            Some(&expected) if expected == path => {
                done.records += 1;
                done.failed += usize::from(failed);
                done.keep = end;
                Ok(())
            }
            Some(&expected) => Err(format!(
                "its record {} is for {path}, but this run's input {} is {expected}: it was written for other inputs",
                done.records + 1,
                done.records + 1
            )),
            None => Err(format!(
                "it holds more records than this run has inputs ({}): it was written for other inputs",
                paths.len()
            )),
        }
    };
    match format {
        Format::Table => {
            return Err(
                "--resume needs --format json, jsonl or csv (a table cannot be read back)".into(),
            )
        }
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

/// The bytes of a `--tiles` file to keep: its header and the rows of slides in `done`, up to the
/// first row of any other slide (the one that was interrupted).
pub(crate) fn tiles_kept(bytes: &[u8], csv: bool, done: &HashSet<&str>) -> usize {
    let mut keep = 0;
    if csv {
        // The header, then rows while they belong to finished slides.
        for (k, (record, end)) in complete_rows(bytes).enumerate() {
            if k > 0 && !done.contains(record.get(0).unwrap_or_default()) {
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
        assert!(other.contains("other inputs"), "{other}");
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
        assert_eq!(tiles_kept(text, true, &done), 15);
    }
}
