"""Reads scancer's slide exports with independent readers and prints what they found, as JSON.

Usage: slide_exports.py GEOJSON ASAP_XML

- GeoJSON: every geometry through shapely (valid, non-empty), and the layout QuPath 0.4+ reads:
  a FeatureCollection of Features whose properties hold objectType (annotation or detection),
  classification {name, color [r, g, b]} and measurements {name: number}.
- ASAP XML: parsed with the standard library as ASAP's format (ASAP_Annotations / Annotations /
  Annotation[Type=Polygon, PartOfGroup] / Coordinates / Coordinate[Order, X, Y]; groups declared in
  AnnotationGroups), polygons rebuilt with shapely (Tumor minus the _2 exclusions inside it), and
  compared with the GeoJSON annotations: the symmetric difference of the two must have no area.
"""

import json
import sys
import xml.etree.ElementTree as ET

import shapely
from shapely.geometry import Polygon, shape
from shapely.ops import unary_union


def check_geojson(path):
    with open(path) as f:
        collection = json.load(f)
    assert collection["type"] == "FeatureCollection", collection["type"]
    out = {"detections": 0, "annotations": [], "invalid": [], "classes": {}}
    for feature in collection["features"]:
        assert feature["type"] == "Feature"
        props = feature["properties"]
        kind = props["objectType"]
        assert kind in ("annotation", "detection"), kind
        name = props["classification"]["name"]
        color = props["classification"]["color"]
        assert isinstance(name, str) and len(color) == 3 and all(0 <= c <= 255 for c in color)
        measurements = props["measurements"]
        assert isinstance(measurements, dict)
        assert all(isinstance(v, (int, float)) for v in measurements.values()), measurements
        geometry = shape(feature["geometry"])
        if not geometry.is_valid or geometry.is_empty:
            out["invalid"].append(shapely.is_valid_reason(geometry))
        out["classes"][name] = out["classes"].get(name, 0) + 1
        if kind == "detection":
            out["detections"] += 1
        else:
            out["annotations"].append(
                {
                    "name": props["name"],
                    "type": feature["geometry"]["type"],
                    "area": geometry.area,
                    "bounds": list(geometry.bounds),
                    "holes": sum(
                        len(p.interiors) for p in getattr(geometry, "geoms", [geometry])
                    ),
                    "measurements": measurements,
                    "wkb": geometry.wkb_hex,
                }
            )
    out["provenance"] = collection["scancer"]["provenance"]
    return out


def check_asap(path, annotations):
    root = ET.parse(path).getroot()
    assert root.tag == "ASAP_Annotations"
    groups = {g.get("Name") for g in root.find("AnnotationGroups")}
    pieces = {}
    for a in root.find("Annotations"):
        assert a.tag == "Annotation" and a.get("Type") == "Polygon"
        group = a.get("PartOfGroup")
        assert group in groups, group
        points = sorted(
            (int(c.get("Order")), float(c.get("X")), float(c.get("Y")))
            for c in a.find("Coordinates")
        )
        ring = [(x, y) for _, x, y in points]
        # "Region 3 part 2 hole 1" -> region "Region 3".
        region = " ".join(a.get("Name").split()[:2])
        pieces.setdefault(region, []).append((group, Polygon(ring)))
    regions = {}
    for region, parts in pieces.items():
        tumour = unary_union([p for g, p in parts if g == "Tumor"])
        excluded = unary_union([p for g, p in parts if g == "_2"]) if any(
            g == "_2" for g, _ in parts
        ) else Polygon()
        regions[region] = tumour.difference(excluded)
    matches = {}
    for a in annotations:
        geojson = shapely.from_wkb(bytes.fromhex(a["wkb"]))
        asap = regions.get(a["name"])
        matches[a["name"]] = (
            None if asap is None else asap.symmetric_difference(geojson).area
        )
    return {"groups": sorted(groups), "regions": len(regions), "difference": matches}


def main():
    geojson = check_geojson(sys.argv[1])
    asap = check_asap(sys.argv[2], geojson["annotations"])
    for a in geojson["annotations"]:
        del a["wkb"]
    json.dump({"geojson": geojson, "asap": asap}, sys.stdout)


if __name__ == "__main__":
    main()
