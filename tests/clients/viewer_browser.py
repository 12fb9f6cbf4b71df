"""The viewer page in a real browser (Debian's chromium through chromedriver, driven by selenium):
opens a slide, starts an analysis from the page's form, waits for it, and clicks a region. Prints
JSON with what it measured on its screenshots (slide.png, analysis.png, region.png in --out):

- tiles: the share of the slide's on-screen area that is not blank white;
- windows: for known windows (a positive tissue window, a glass one), the screen colour before and
  after the overlay, and the overlay's own colour there (from the API's overlay tile);
- region: the viewport before and after the click, in level-0 pixels, and the region's bounds.
"""

import argparse
import csv
import io
import json
import sys
import time
import urllib.request

import numpy

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select


def wait(driver, script, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def settled(driver):
    """Waits for the viewport to stop moving and every tile to be drawn."""
    wait(driver, """
        const v = window.scancer && window.scancer.viewer;
        if (!v || v.world.getItemCount() === 0) return false;
        for (let i = 0; i < v.world.getItemCount(); i++) {
            if (!v.world.getItemAt(i).getFullyLoaded()) return false;
        }
        const now = v.viewport.getZoom(true), target = v.viewport.getZoom(false);
        const c = v.viewport.getCenter(true), t = v.viewport.getCenter(false);
        return Math.abs(now - target) <= 1e-6 * target && Math.abs(c.x - t.x) < 1e-6 && Math.abs(c.y - t.y) < 1e-6;
    """, 120, "the tiles")
    # Two frames more, so that what was loaded is on the canvas.
    driver.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    time.sleep(0.3)


def screenshot(driver, path):
    png = driver.get_screenshot_as_png()
    with open(path, "wb") as f:
        f.write(png)
    return Image.open(io.BytesIO(png)).convert("RGB")


def on_screen(driver, x, y):
    """Screen (page) coordinates, in screenshot pixels, of level-0 point (x, y)."""
    return driver.execute_script("""
        const v = window.scancer.viewer;
        const p = v.world.getItemAt(0).imageToViewerElementCoordinates(new OpenSeadragon.Point(arguments[0], arguments[1]));
        const r = v.element.getBoundingClientRect();
        return [(r.left + p.x) * devicePixelRatio, (r.top + p.y) * devicePixelRatio];
    """, x, y)


def median_colour(image, x, y, radius=3):
    pixels = [image.getpixel((int(x) + dx, int(y) + dy)) for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1)]
    return [sorted(p[c] for p in pixels)[len(pixels) // 2] for c in range(3)]


def get(url, headers):
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request) as response:
        return response.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--slide", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--user", help="Basic credentials name:password, given in the URL")
    parser.add_argument("--key", help="TorchServe's inference key, typed into the page's prompt")
    args = parser.parse_args()
    base = args.url
    headers = {}
    if args.key:
        headers["Authorization"] = "Bearer " + args.key
    if args.user:
        import base64
        headers["Authorization"] = "Basic " + base64.b64encode(args.user.encode()).decode()
        scheme, rest = base.split("://", 1)
        page_base = f"{scheme}://{args.user}@{rest}"
    else:
        page_base = base

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    out = {}
    try:
        driver.get(f"{page_base}/viewer/#slide={args.slide}")
        if args.key:
            # The page asks once for the key, then sends it with every request.
            deadline = time.monotonic() + 30
            while True:
                try:
                    alert = driver.switch_to.alert
                    out["prompt"] = alert.text
                    alert.send_keys(args.key)
                    alert.accept()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise SystemExit("the page did not ask for the key")
                    time.sleep(0.1)
        settled(driver)
        before = screenshot(driver, f"{args.out}/slide.png")
        box = driver.execute_script("""
            const v = window.scancer.viewer, item = v.world.getItemAt(0);
            const r = v.viewport.viewportToViewerElementRectangle(item.getBounds(true));
            const e = v.element.getBoundingClientRect();
            return [Math.max(0, e.left + r.x), Math.max(0, e.top + r.y), Math.min(e.right, e.left + r.x + r.width), Math.min(e.bottom, e.top + r.y + r.height)];
        """)
        crop = before.crop(tuple(int(v) for v in box))
        pixels = [tuple(p) for p in numpy.asarray(crop).reshape(-1, 3)[::7]]
        out["tiles"] = {
            "box": box,
            "not_white": sum(1 for p in pixels if min(p) < 235) / len(pixels),
            "tissue": sum(1 for p in pixels if max(p) - min(p) > 40) / len(pixels),
        }
        out["title"] = driver.title
        out["scalebar"] = driver.find_element(By.ID, "scalebar-text").text

        Select(driver.find_element(By.ID, "model")).select_by_value(args.model)
        driver.find_element(By.ID, "start").click()
        wait(driver, "return document.getElementById('analysis-status').textContent === 'done'", 600, "the analysis")
        wait(driver, "return window.scancer.state.overlay !== null", 60, "the overlay")
        wait(driver, "return document.querySelectorAll('#regions tbody tr').length > 0", 60, "the regions")
        settled(driver)
        after = screenshot(driver, f"{args.out}/analysis.png")
        analysis = driver.execute_script("return window.scancer.state.analysis")
        out["analysis"] = {"id": analysis["id"], "status": analysis["status"], "regions": analysis["record"]["slide"]["regions"]}
        out["downloads"] = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#downloads a")]

        rows = list(csv.DictReader(io.StringIO(get(f"{base}/analyses/{analysis['id']}/tiles.csv", headers).decode())))
        view = driver.execute_script("""
            const v = window.scancer.viewer, b = v.world.getItemAt(0).viewportToImageRectangle(v.viewport.getBounds(true));
            return [b.x, b.y, b.x + b.width, b.y + b.height];
        """)
        def visible(r):
            x, y, w, h = (int(r[k]) for k in ("x", "y", "width", "height"))
            return x >= view[0] and y >= view[1] and x + w <= view[2] and y + h <= view[3]
        positive = max((r for r in rows if r["probability"] and visible(r)), key=lambda r: float(r["probability"]))
        glass = next(r for r in rows if r["tissue"] == "false" and visible(r))
        # The overlay's colour at the positive window, from its full-size overlay tile.
        dzi = get(f"{base}/analyses/{analysis['id']}/overlay.dzi", headers).decode()
        width = int(dzi.split('Width="')[1].split('"')[0])
        height = int(dzi.split('Height="')[1].split('"')[0])
        last = max(width, height).bit_length() if max(width, height) & (max(width, height) - 1) else max(width, height).bit_length() - 1
        windows = {}
        for name, row in (("positive", positive), ("glass", glass)):
            x, y, w, h = (int(row[k]) for k in ("x", "y", "width", "height"))
            cx, cy = x + w // 2, y + h // 2
            sx, sy = on_screen(driver, cx, cy)
            col, tile_row = cx // 254, cy // 254
            tile = Image.open(io.BytesIO(get(f"{base}/analyses/{analysis['id']}/overlay_files/{last}/{col}_{tile_row}.png", headers))).convert("RGBA")
            ox = cx - col * 254 + (1 if col else 0)
            oy = cy - tile_row * 254 + (1 if tile_row else 0)
            windows[name] = {
                "window": [x, y, w, h],
                "probability": row["probability"],
                "screen": [sx, sy],
                "before": median_colour(before, sx, sy),
                "after": median_colour(after, sx, sy),
                "overlay": list(tile.getpixel((ox, oy))),
            }
        out["windows"] = windows
        out["opacity"] = float(driver.find_element(By.ID, "opacity").get_attribute("value"))

        region = driver.execute_script("return JSON.parse(JSON.stringify(document.querySelector('#regions tbody tr').title))")
        zoom_before = driver.execute_script("return window.scancer.viewer.viewport.getZoom(true)")
        driver.find_element(By.CSS_SELECTOR, "#regions tbody tr").click()
        time.sleep(0.2)
        settled(driver)
        screenshot(driver, f"{args.out}/region.png")
        regions = json.loads(get(f"{base}/analyses/{analysis['id']}/regions", headers))
        after_view = driver.execute_script("""
            const v = window.scancer.viewer, b = v.world.getItemAt(0).viewportToImageRectangle(v.viewport.getBounds(true));
            return [b.x, b.y, b.x + b.width, b.y + b.height];
        """)
        out["region"] = {
            "name": region,
            "bounds": regions[0]["bounds"],
            "view_before": view,
            "view_after": after_view,
            "zoom_before": zoom_before,
            "zoom_after": driver.execute_script("return window.scancer.viewer.viewport.getZoom(true)"),
            "outline_pixels": int(sum(1 for p in numpy.asarray(Image.open(f"{args.out}/region.png").convert("RGB")).reshape(-1, 3)[::3]
                                      if p[0] < 80 and p[1] > 180 and p[2] > 200)),
        }
        out["console"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    finally:
        driver.quit()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
