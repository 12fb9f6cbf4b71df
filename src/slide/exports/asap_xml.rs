//! ASAP's XML annotations (`--asap-xml`), as the Camelyon16 ground truth is written: one `Polygon`
//! annotation per outline of a positive region in group `Tumor`, and one in group `_2` (Camelyon16's
//! non-tumour exclusion inside a lesion) per hole, in level-0 pixels. ASAP, QuPath's ASAP importers
//! and the Camelyon evaluation code read it; the provenance is an XML comment.

use super::export::Export;
use crate::slide::class_colours::{colour, hex};
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;
use std::io::{self, Write};

const TUMOR: &str = "Tumor";
const EXCLUSION: &str = "_2";
/// Camelyon16's colour of its exclusion group.
const EXCLUSION_COLOUR: &str = "#64FE2E";

fn polygon<W: Write>(
    xml: &mut Writer<W>,
    name: &str,
    group: &str,
    color: &str,
    ring: &geo::LineString<f64>,
) -> io::Result<()> {
    // ASAP closes polygons itself: the repeated first point is left out.
    let points: Vec<_> = ring.coords().collect();
    let open = &points[..points.len().saturating_sub(1)];
    xml.create_element("Annotation")
        .with_attributes([
            ("Name", name),
            ("Type", "Polygon"),
            ("PartOfGroup", group),
            ("Color", color),
        ])
        .write_inner_content(|xml| {
            xml.create_element("Coordinates")
                .write_inner_content(|xml| {
                    for (order, c) in open.iter().enumerate() {
                        xml.create_element("Coordinate")
                            .with_attributes([
                                ("Order", order.to_string().as_str()),
                                ("X", c.x.to_string().as_str()),
                                ("Y", c.y.to_string().as_str()),
                            ])
                            .write_empty()?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

pub(crate) fn write(export: &Export, out: &mut dyn Write) -> io::Result<()> {
    let mut xml = Writer::new_with_indent(out, b'\t', 1);
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let result = export.result;
    // Camelyon16's group for a binary model's positive class; a multiclass model's are its labels.
    let group = |c: usize| -> String {
        if result.kind == crate::records::OutputKind::Binary {
            TUMOR.to_string()
        } else {
            result.labels[c].clone()
        }
    };
    let about = format!(
        " scancer: regions of {}; {} ",
        result
            .class_regions
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_empty())
            .map(|(c, _)| result.labels[c].clone())
            .collect::<Vec<_>>()
            .join(", "),
        export.provenance.one_line()
    );
    // A comment may not hold "--".
    xml.write_event(Event::Comment(BytesText::from_escaped(
        about.replace("--", "- -"),
    )))?;
    // Each group with its class's colour (`class_colours`); Camelyon16's exclusion group last.
    let classes = result.labels.len();
    let coloured = |c: usize| (group(c), hex(colour(classes, c)));
    let mut groups: Vec<(String, String)> = Vec::new();
    xml.create_element("ASAP_Annotations")
        .write_inner_content(|xml| {
            xml.create_element("Annotations")
                .write_inner_content(|xml| {
                    let mut n = 0;
                    for (c, regions) in result.class_regions.iter().enumerate() {
                        for region in regions {
                            n += 1;
                            let (g, shade) = coloured(c);
                            if !groups.iter().any(|(name, _)| *name == g) {
                                groups.push((g.clone(), shade.clone()));
                            }
                            for (piece, p) in region.outline.0.iter().enumerate() {
                                let name = if region.outline.0.len() == 1 {
                                    format!("Region {n}")
                                } else {
                                    format!("Region {n} part {}", piece + 1)
                                };
                                polygon(xml, &name, &g, &shade, p.exterior())?;
                                for (h, hole) in p.interiors().iter().enumerate() {
                                    let hole_name = format!("{name} hole {}", h + 1);
                                    polygon(xml, &hole_name, EXCLUSION, EXCLUSION_COLOUR, hole)?;
                                }
                            }
                        }
                    }
                    Ok(())
                })?;
            if groups.is_empty() {
                groups.push(coloured(result.focus.unwrap_or(0)));
            }
            groups.push((EXCLUSION.to_string(), EXCLUSION_COLOUR.to_string()));
            xml.create_element("AnnotationGroups")
                .write_inner_content(|xml| {
                    for (name, color) in &groups {
                        let color = color.as_str();
                        xml.create_element("Group")
                            .with_attributes([
                                ("Name", name.as_str()),
                                ("PartOfGroup", "None"),
                                ("Color", color),
                            ])
                            .write_inner_content(|xml| {
                                xml.create_element("Attributes").write_empty()?;
                                Ok(())
                            })?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    xml.into_inner().write_all(b"\n")
}
