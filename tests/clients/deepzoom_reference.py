"""Deep Zoom as openslide-python's DeepZoomGenerator lays slides out (tile size 254, overlap 1, no
bounds limit): for each slide on the command line, its DZI, every level's size and tile grid, every
tile's size, and for the tiles of the levels named by --sample, the size Pillow draws and the mean
RGB of each quarter of the tile. Slides OpenSlide cannot open are read as openslide.ImageSlide."""

import argparse
import json

import numpy as np
import openslide
from openslide.deepzoom import DeepZoomGenerator


def quarters(tile):
    """The mean RGB of each quarter of a tile (top-left, top-right, bottom-left, bottom-right)."""
    pixels = np.asarray(tile.convert("RGB"), dtype=np.float64)
    h, w = pixels.shape[:2]
    return [
        pixels[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0).tolist()
        for (y0, y1) in ((0, h // 2), (h // 2, h))
        for (x0, x1) in ((0, w // 2), (w // 2, w))
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, nargs="*", default=[], help="levels counted from the last (0 = full size)")
    parser.add_argument("slides", nargs="+")
    args = parser.parse_args()
    out = {}
    for path in args.slides:
        try:
            slide = openslide.OpenSlide(path)
        except openslide.OpenSlideUnsupportedFormatError:
            slide = openslide.ImageSlide(path)
        dz = DeepZoomGenerator(slide, tile_size=254, overlap=1, limit_bounds=False)
        levels = []
        for level in range(dz.level_count):
            cols, rows = dz.level_tiles[level]
            levels.append({
                "size": list(dz.level_dimensions[level]),
                "tiles": [cols, rows],
                "tile_sizes": [[list(dz.get_tile_dimensions(level, (c, r))) for c in range(cols)] for r in range(rows)],
            })
        samples = []
        for back in args.sample:
            level = dz.level_count - 1 - back
            cols, rows = dz.level_tiles[level]
            for r in range(rows):
                for c in range(cols):
                    tile = dz.get_tile(level, (c, r))
                    samples.append({"level": level, "col": c, "row": r, "drawn": list(tile.size), "quarters": quarters(tile)})
        out[path] = {"dzi": dz.get_dzi("jpeg"), "levels": levels, "samples": samples}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
