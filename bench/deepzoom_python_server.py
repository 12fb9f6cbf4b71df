"""The competitor of scancer's tiles: openslide-python's DeepZoomGenerator (tile size 254, overlap
1, JPEG quality 75, as its examples/deepzoom server) behind Python's threading HTTP server, serving
the same paths as scancer (`/slides/{id}.dzi`, `/slides/{id}_files/{level}/{col}_{row}.jpeg`) for the
slides given as ID=PATH. Prints its port, then serves until killed."""

import io
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openslide
from openslide.deepzoom import DeepZoomGenerator

GENERATORS = {}
LOCK = threading.Lock()


def generator(slide_id):
    # One generator (and OpenSlide handle) per slide, as the example server keeps them.
    with LOCK:
        return GENERATORS[slide_id]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if m := re.fullmatch(r"/slides/([^/]+)_files/(\d+)/(\d+)_(\d+)\.jpeg", self.path):
            tile = generator(m.group(1)).get_tile(int(m.group(2)), (int(m.group(3)), int(m.group(4))))
            out = io.BytesIO()
            tile.save(out, "jpeg", quality=75)
            self.answer(200, "image/jpeg", out.getvalue())
        elif m := re.fullmatch(r"/slides/([^/]+)\.dzi", self.path):
            self.answer(200, "application/xml", generator(m.group(1)).get_dzi("jpeg").encode())
        else:
            self.answer(404, "text/plain", b"not found\n")

    def answer(self, status, content_type, body):
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    for arg in sys.argv[1:]:
        slide_id, path = arg.split("=", 1)
        try:
            slide = openslide.OpenSlide(path)
        except openslide.OpenSlideUnsupportedFormatError:
            slide = openslide.ImageSlide(path)
        GENERATORS[slide_id] = DeepZoomGenerator(slide, tile_size=254, overlap=1, limit_bounds=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
