"""Opens a pyramidal TIFF scancer wrote with OpenSlide (openslide-python on openslide-bin) and with
tifffile, and prints what each sees, as JSON.

Usage: pyramid_tiff.py FILE.tif [X,Y ...] [all]

OpenSlide: vendor, levels (dimensions and downsamples), mpp, the TIFF description, and the RGBA
pixel at each level-0 point given (read_region). tifffile: each page's shape, tile size and
compression, the level-0 sample at each point, and with "all" the whole of level 0 (for small
one-channel class masks).
"""

import json
import sys

import openslide
import tifffile


def main():
    path = sys.argv[1]
    everything = "all" in sys.argv[2:]
    points = [tuple(int(v) for v in p.split(",")) for p in sys.argv[2:] if p != "all"]
    slide = openslide.OpenSlide(path)
    props = slide.properties
    seen = {
        "vendor": props.get("openslide.vendor"),
        "dimensions": slide.level_dimensions,
        "downsamples": slide.level_downsamples,
        "mpp": [props.get("openslide.mpp-x"), props.get("openslide.mpp-y")],
        "description": props.get("tiff.ImageDescription"),
        "rgba": [list(slide.read_region(p, 0, (1, 1)).getpixel((0, 0))) for p in points],
    }
    with tifffile.TiffFile(path) as tif:
        pages = tif.pages
        level0 = pages[0].asarray()
        seen["tifffile"] = {
            "shapes": [list(p.shape) for p in pages],
            "tiles": [list(p.tile) if p.tile else None for p in pages],
            "compression": [int(p.compression) for p in pages],
            "samples": [level0[y, x].tolist() for x, y in points],
        }
        if everything:
            seen["tifffile"]["level0"] = level0.tolist()
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    main()
