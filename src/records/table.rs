//! The table for people: aligned columns, errors in red on a colour terminal.

use super::{Answer, Outcome, OutputKind, Prediction, RecordWriter, Schema};
use std::io::{self, Write};

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TableStyle {
    pub(crate) color: bool,
    /// Width of the path column (the longest path of the run).
    pub(crate) path_width: usize,
}

pub(super) struct Table<'w> {
    pub(super) schema: Schema,
    pub(super) out: Box<dyn Write + 'w>,
    pub(super) style: TableStyle,
    pub(super) started: bool,
}

const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

impl Table<'_> {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.style.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    fn columns(&self) -> (&'static str, &'static str) {
        match self.schema.kind {
            OutputKind::Binary | OutputKind::Multiclass => ("LABEL", "SCORE"),
            OutputKind::Segmentation => ("MASK", "CLASS FRACTIONS"),
            OutputKind::Raw => ("SHAPE", "OUTPUT"),
        }
    }

    /// The header line, once (never in a piece that does not open the table).
    fn head(&mut self) -> io::Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        let (a, b) = self.columns();
        let (pw, lw) = (self.style.path_width.max(4), self.label_width());
        let header = format!("{:<pw$}  {a:<lw$}  {b}", "PATH");
        writeln!(self.out, "{}", self.paint(BOLD, header.trim_end()))
    }

    fn label_width(&self) -> usize {
        match self.schema.kind {
            OutputKind::Binary | OutputKind::Multiclass => self
                .schema
                .classes
                .iter()
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                .max(5),
            _ => 12,
        }
    }
}

fn percent_list(schema: &Schema, fractions: &[f32]) -> String {
    let mut order: Vec<usize> = (0..fractions.len()).collect();
    order.sort_by(|&a, &b| fractions[b].total_cmp(&fractions[a]));
    order
        .iter()
        .map(|&k| format!("{} {:.1}%", schema.label(k), fractions[k] * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RecordWriter for Table<'_> {
    fn write(&mut self, answer: &Answer) -> io::Result<()> {
        self.head()?;
        let pw = self.style.path_width.max(4);
        let lw = self.label_width();
        let (a, b) = match answer.outcome {
            Outcome::Failed(message) => (self.paint(RED, "error"), self.paint(RED, message)),
            // A remote TorchServe answers the class alone: no score to show.
            Outcome::Predicted(Prediction::Class(c)) if c.score.is_nan() => {
                (c.label.clone(), "-".to_owned())
            }
            Outcome::Predicted(Prediction::Class(c)) => {
                (c.label.clone(), format!("{:.4}", c.score))
            }
            Outcome::Predicted(Prediction::Segmentation(s)) => (
                answer.mask_file.unwrap_or("-").to_owned(),
                percent_list(&self.schema, &s.fractions),
            ),
            Outcome::Predicted(Prediction::Raw(r)) => {
                let shown: Vec<String> =
                    r.values.iter().take(6).map(|v| format!("{v:.4}")).collect();
                let more = if r.values.len() > 6 { " ..." } else { "" };
                (
                    format!("{:?}", r.shape),
                    format!("{}{more}", shown.join(" ")),
                )
            }
        };
        let b = match (answer.slide, answer.outcome) {
            (Some(s), Outcome::Predicted(_)) => {
                // A binary model's windows are positive or not; a model of classes' windows
                // each have a class (the answer names their shares), none is "positive".
                let windows = if s.classes.is_empty() {
                    format!(
                        "{} of {} tissue windows positive",
                        s.positive_tiles, s.tissue_tiles
                    )
                } else {
                    format!("{} tissue windows", s.tissue_tiles)
                };
                format!(
                    "{b}  ({windows}, {} background; tissue {:.1}%){}",
                    s.tiles - s.tissue_tiles,
                    s.tissue_fraction * 100.0,
                    s.warning
                        .as_ref()
                        .map_or_else(String::new, |w| format!("  warning: {w}"))
                )
            }
            _ => b,
        };
        // Pad by visible width: colour codes do not take space on screen.
        let a_pad = lw.saturating_sub(match answer.outcome {
            Outcome::Failed(_) => 5,
            _ => a.chars().count(),
        });
        let path_pad = pw.saturating_sub(answer.path.chars().count());
        writeln!(
            self.out,
            "{}{}  {a}{}  {b}",
            answer.path,
            " ".repeat(path_pad),
            " ".repeat(a_pad)
        )?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        // An empty first shard still heads the whole table.
        self.head()?;
        self.out.flush()
    }
}
