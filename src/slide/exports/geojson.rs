//! QuPath's GeoJSON (`--geojson`): a FeatureCollection in level-0 pixels, one `detection` per tissue
//! window (classified by its label, its probability as a measurement) and one `annotation` per
//! positive region (its outline, area, diameter and peak as measurements), laid out as QuPath 0.4+
//! exports objects (`objectType`, `classification {name, color}`, `measurements {name: value}`).
//! Provenance rides along as a foreign member, which GeoJSON readers ignore.

use super::export::{number, Export};
use crate::slide::class_colours::colour;
use geo::{MultiPolygon, Polygon};
use serde_json::{json, Map, Value};
use std::io::{self, Write};

fn ring(points: &geo::LineString<f64>) -> Value {
    Value::Array(
        points
            .coords()
            .map(|c| json!([c.x.round() as i64, c.y.round() as i64]))
            .collect(),
    )
}

fn polygon(p: &Polygon<f64>) -> Value {
    let mut rings = vec![ring(p.exterior())];
    rings.extend(p.interiors().iter().map(ring));
    Value::Array(rings)
}

/// A region's outline: a Polygon when it is one piece, else a MultiPolygon.
pub(crate) fn geometry(outline: &MultiPolygon<f64>) -> Value {
    match outline.0.as_slice() {
        [one] => json!({"type": "Polygon", "coordinates": polygon(one)}),
        many => json!({
            "type": "MultiPolygon",
            "coordinates": many.iter().map(polygon).collect::<Vec<_>>(),
        }),
    }
}

fn rectangle([x, y, w, h]: [u64; 4]) -> Value {
    let (x1, y1) = (x + w, y + h);
    json!({
        "type": "Polygon",
        "coordinates": [[[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]],
    })
}

/// QuPath's classification: the class's name and its colour (`class_colours`).
fn classification(labels: &[String], class: usize) -> Value {
    json!({"name": labels[class], "color": colour(labels.len(), class)})
}

/// Writes the FeatureCollection, one feature a line (a large slide has hundreds of thousands).
pub(crate) fn write(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    let result = export.result;
    let grid = export.grid();
    let mut head = Map::new();
    head.insert("type".into(), "FeatureCollection".into());
    head.insert("scancer".into(), export.about());
    let head = serde_json::to_string(&Value::Object(head))?;
    // The collection's members, then its features streamed.
    write!(out, "{},\"features\":[", &head[..head.len() - 1])?;
    let mut first = true;
    let mut feature = |out: &mut dyn Write, value: Value| -> io::Result<()> {
        out.write_all(if first { b"\n" } else { b",\n" })?;
        first = false;
        serde_json::to_writer(&mut *out, &value)?;
        Ok(())
    };
    let mut n = 0;
    for (class, regions) in result.class_regions.iter().enumerate() {
        for region in regions {
            n += 1;
            let mut measurements = Map::new();
            if region.peak.is_finite() {
                measurements.insert("peak_probability".into(), number(region.peak));
            }
            measurements.insert("windows".into(), region.windows.len().into());
            measurements.insert("area_px".into(), json!(region.area));
            measurements.insert("diameter_px".into(), json!(region.diameter));
            if let Some(area) = region.area_mm2(export.mpp()) {
                measurements.insert("area_mm2".into(), json!(area));
            }
            if let Some(d) = region.diameter_mm(export.mpp()) {
                measurements.insert("diameter_mm".into(), json!(d));
            }
            feature(
                out,
                json!({
                    "type": "Feature",
                    "geometry": geometry(&region.outline),
                    "properties": {
                        "objectType": "annotation",
                        "name": format!("Region {n}"),
                        "classification": classification(&result.labels, class),
                        "isLocked": false,
                        "measurements": measurements,
                    },
                }),
            )?;
        }
    }
    let classes = result.labels.len();
    for (k, tile) in result.tiles.iter().enumerate() {
        let Some(class) = tile.class.filter(|_| tile.tissue) else {
            continue;
        };
        // Every class's probability (segmentation: the window's most frequent class's share).
        // Only numbers: QuPath reads each measurement as a double, and a null fails its import.
        let score = |c: usize| {
            result
                .scores
                .get(k * classes + c)
                .copied()
                .filter(|p| p.is_finite())
        };
        let mut measurements = Map::new();
        if classes == 2 && result.focus == Some(1) && score(1).is_some() {
            measurements.insert("probability".into(), number(score(1).unwrap_or_default()));
        } else if classes > 0 && (0..classes).all(|c| score(c).is_some()) {
            for (c, label) in result.labels.iter().enumerate() {
                measurements.insert(
                    format!("probability {label}"),
                    number(score(c).unwrap_or_default()),
                );
            }
        } else if let Some(fraction) = tile.probability.filter(|p| p.is_finite()) {
            measurements.insert("fraction".into(), number(fraction));
        }
        feature(
            out,
            json!({
                "type": "Feature",
                "geometry": rectangle(grid.window_bounds(k)),
                "properties": {
                    "objectType": "detection",
                    "classification": classification(&result.labels, class),
                    "measurements": measurements,
                },
            }),
        )?;
    }
    out.write_all(b"\n]}\n")
}
