//! CSV: a header, then one row per record; the columns depend on the output kind (and slide summary
//! columns for slide runs) and are the same for every row.

use super::{
    writer, Answer, Format, Outcome, OutputKind, Piece, Prediction, RecordWriter, Schema,
    TableStyle,
};
use std::io::{self, Write};

/// The CSV header a run writes (with its line end).
pub(crate) fn csv_header(schema: &Schema, slides: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut w = writer(
            Format::Csv,
            schema.clone(),
            Box::new(&mut bytes),
            TableStyle::default(),
            slides,
            Piece {
                before: 0,
                opens: true,
                closes: false,
            },
        );
        // Writing to memory cannot fail.
        let _ = w.finish();
    }
    bytes
}

/// Summary columns of slide records, in order.
const SLIDE_COLUMNS: [&str; 24] = [
    "width",
    "height",
    "level",
    "downsample",
    "mpp",
    "tiles",
    "tissue_tiles",
    "tissue_fraction",
    "positive_tiles",
    "max_probability",
    "mean_probability",
    "positive_fraction",
    "hotspot_x",
    "hotspot_y",
    "regions",
    "largest_region_mm2",
    "heatmap",
    "heatmap_downsample",
    "geojson",
    "asap_xml",
    "lesions",
    "model_sha256",
    "config_sha256",
    "warning",
];

pub(super) struct Csv<'w> {
    pub(super) out: ::csv::Writer<Box<dyn Write + 'w>>,
    pub(super) schema: Schema,
    pub(super) started: bool,
    pub(super) slides: bool,
}

fn csv_error(e: ::csv::Error) -> io::Error {
    match e.into_kind() {
        ::csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

impl Csv<'_> {
    fn header(&self) -> Vec<String> {
        let classes = self.schema.classes.iter();
        let mut h = vec!["path".to_owned()];
        match self.schema.kind {
            OutputKind::Binary | OutputKind::Multiclass => {
                h.extend(["label", "class", "score"].map(String::from));
                h.extend(classes.map(|c| format!("p:{c}")));
            }
            OutputKind::Segmentation => {
                h.push("mask".into());
                h.extend(classes.map(|c| format!("fraction:{c}")));
            }
            OutputKind::Raw => h.extend(["shape", "output"].map(String::from)),
        }
        if self.slides {
            h.extend(SLIDE_COLUMNS.map(String::from));
        }
        h.push("error".into());
        h
    }
}

/// One value per class column of the header: a remote server's answer may name more or fewer
/// classes than its metadata did, and a CSV row must still have the header's columns (empty where
/// the answer gave no value).
fn per_class(values: &[f32], n: usize) -> impl Iterator<Item = f32> + '_ {
    (0..n).map(|k| values.get(k).copied().unwrap_or(f32::NAN))
}

impl RecordWriter for Csv<'_> {
    fn write(&mut self, answer: &Answer) -> io::Result<()> {
        if !self.started {
            self.out.write_record(self.header()).map_err(csv_error)?;
            self.started = true;
        }
        let n = self.schema.classes.len();
        let f = |x: f32| {
            if x.is_nan() {
                String::new()
            } else {
                format!("{x}")
            }
        };
        let mut row = vec![answer.path.to_owned()];
        let (prediction, error) = match answer.outcome {
            Outcome::Predicted(p) => (Some(p), String::new()),
            Outcome::Failed(m) => (None, m.clone()),
        };
        match (self.schema.kind, prediction) {
            (OutputKind::Binary | OutputKind::Multiclass, Some(Prediction::Class(c))) => {
                row.extend([c.label.clone(), c.class.to_string(), f(c.score)]);
                row.extend(per_class(&c.probabilities, n).map(f));
            }
            (OutputKind::Binary | OutputKind::Multiclass, _) => {
                row.extend(vec![String::new(); 3 + n])
            }
            (OutputKind::Segmentation, Some(Prediction::Segmentation(s))) => {
                row.push(answer.mask_file.unwrap_or_default().to_owned());
                row.extend(per_class(&s.fractions, n).map(f));
            }
            (OutputKind::Segmentation, _) => row.extend(vec![String::new(); 1 + n]),
            (OutputKind::Raw, Some(Prediction::Raw(r))) => {
                row.push(
                    r.shape
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("x"),
                );
                row.push(r.values.iter().map(|&v| f(v)).collect::<Vec<_>>().join(" "));
            }
            (OutputKind::Raw, _) => row.extend([String::new(), String::new()]),
        }
        if self.slides {
            let g = |x: Option<f32>| x.map_or_else(String::new, f);
            match answer.slide {
                Some(s) => {
                    let value = |v: &serde_json::Value| match v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let json = s.to_json();
                    let export = |key: &str| {
                        s.exports
                            .iter()
                            .find(|(k, _)| *k == key)
                            .map_or_else(String::new, |(_, p)| p.clone())
                    };
                    row.extend([
                        s.width.to_string(),
                        s.height.to_string(),
                        s.level.to_string(),
                        value(&json["downsample"]),
                        value(&json["mpp"]),
                        s.tiles.to_string(),
                        s.tissue_tiles.to_string(),
                        f(s.tissue_fraction),
                        s.positive_tiles.to_string(),
                        g(s.max_probability),
                        g(s.mean_probability),
                        g(s.positive_fraction),
                        value(&json["hotspot"]["x"]),
                        value(&json["hotspot"]["y"]),
                        s.regions.to_string(),
                        s.largest_region_mm2()
                            .map_or_else(String::new, |a| a.to_string()),
                        s.heatmap.clone().unwrap_or_default(),
                        value(&json["heatmap_downsample"]),
                        export("geojson"),
                        export("asap_xml"),
                        export("lesions"),
                        value(&s.provenance["model_sha256"]),
                        value(&s.provenance["config_sha256"]),
                        s.warning.clone().unwrap_or_default(),
                    ]);
                }
                None => row.extend(vec![String::new(); SLIDE_COLUMNS.len()]),
            }
        }
        row.push(error);
        self.out.write_record(&row).map_err(csv_error)?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.started {
            self.out.write_record(self.header()).map_err(csv_error)?;
        }
        self.out.flush()
    }
}
