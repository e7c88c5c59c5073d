"""Render a report.html in headless Chromium to one PNG of the whole page, as a reader sees it.

Run: ``.venv/bin/python benchmarks/report_screenshot.py demo_out/report.html /tmp/report.png``
(``--width`` sets the browser window width in CSS pixels, default 1280). Needs
``chromium`` on PATH (``apt-get install chromium``). The page is rendered at one
device pixel per CSS pixel; the window is made tall enough for the whole page
(re-rendered taller when the page reaches its bottom edge) and the white space
below the page is cropped. Also prints where each figure is shown and at what
scale (:func:`image_layout`: the browser's layout, read with ``--dump-dom``).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MAX_HEIGHT = 16000  # Chromium's screenshots fail beyond ~16k px


def find_browser() -> str | None:
    """Path of a Chromium-like browser on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def estimate_height(page: str) -> int:
    """A window height (px) that should hold the page: images, table rows, text blocks."""
    images = sum(int(h) for h in re.findall(r'<img [^>]*height="(\d+)"', page))
    blocks = len(re.findall(r"<(?:tr|p|h1|h2|figcaption)\b", page))
    return images + 60 * blocks + 400


# Appended to a copy of the page: on load, writes the text column's width and every image's box
# (page coordinates, CSS px) and natural size into <pre id="layout">, which --dump-dom prints.
_LAYOUT_JS = """<script>window.addEventListener("load", () => {
  const images = [...document.images].map((img) => {
    const r = img.getBoundingClientRect();
    return {file: img.dataset.file || "", natural_width: img.naturalWidth,
            natural_height: img.naturalHeight, x: r.left + scrollX, y: r.top + scrollY,
            width: r.width, height: r.height};
  });
  const pre = document.createElement("pre");
  pre.id = "layout";
  const cs = getComputedStyle(document.body);
  const pad = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
  const column = document.body.clientWidth - pad;
  pre.textContent = JSON.stringify({column_width: column, images});
  document.body.appendChild(pre);
});</script>"""


def _browser_cmd(browser: str, profile: str, width: int, height: int) -> list[str]:
    return [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ]


def _require_browser() -> str:
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("No chromium on PATH; install it (apt-get install chromium).")
    return browser


def image_layout(page_path: str | Path, width: int = 1280, timeout: float = 120) -> dict:
    """Where the browser shows each image of a page in a window ``width`` CSS px wide.

    Returns:
        ``{"column_width": px, "images": [{"file", "natural_width", "natural_height",
        "x", "y", "width", "height"}, ...]}`` in page coordinates (CSS px); ``file`` is
        the image's ``data-file`` attribute.
    """
    browser = _require_browser()
    page = Path(page_path).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "page.html"
        probe.write_text(page.replace("</body>", _LAYOUT_JS + "</body>"), encoding="utf-8")
        profile = Path(tmp) / "profile"
        cmd = [*_browser_cmd(browser, str(profile), width, 1000), "--dump-dom", probe.as_uri()]
        dom = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom.stdout, re.S)
    if found is None:
        raise RuntimeError(f"{browser} returned no layout for {page_path}")
    return json.loads(html.unescape(found.group(1)))


def _shoot(browser: str, page: Path, png: Path, width: int, height: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            *_browser_cmd(browser, profile, width, height),
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)
    if not png.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot for {page}")


def _blank_rows_at_bottom(pixels: np.ndarray) -> int:
    """How many rows at the bottom of an (H, W, 3) image are plain white."""
    white = (pixels >= 250).all(axis=(1, 2))
    return int(np.argmin(white[::-1])) if not white.all() else len(white)


def render(page: str | Path, png: str | Path, width: int = 1280, timeout: float = 120) -> Path:
    """Screenshot the whole page ``page`` (an HTML file) into ``png`` (cropped below the page).

    Raises:
        FileNotFoundError: no Chromium on PATH.
    """
    browser = _require_browser()
    page, png = Path(page), Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    height = min(MAX_HEIGHT, estimate_height(page.read_text(encoding="utf-8")))
    while True:
        _shoot(browser, page, png, width, height, timeout)
        with Image.open(png) as im:
            pixels = np.asarray(im.convert("RGB"))
        blank = _blank_rows_at_bottom(pixels)
        if blank >= 40 or height >= MAX_HEIGHT:
            break
        height = min(MAX_HEIGHT, int(height * 1.5))
    keep = max(1, len(pixels) - max(0, blank - 20))
    Image.fromarray(pixels[:keep]).save(png)
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="report.html to render")
    parser.add_argument("png", type=Path, help="screenshot to write")
    parser.add_argument("--width", type=int, default=1280, help="window width, CSS px")
    args = parser.parse_args()
    out = render(args.html, args.png, args.width)
    with Image.open(out) as im:
        print(f"wrote {out} ({im.width} x {im.height} px)")
    layout = image_layout(args.html, args.width)
    print(f"page column: {layout['column_width']} px")
    for img in layout["images"]:
        scale = img["width"] / img["natural_width"] if img["natural_width"] else 0.0
        print(
            f"  {img['file'] or 'image'}: shown {img['width']:.0f} x {img['height']:.0f} px "
            f"at ({img['x']:.0f}, {img['y']:.0f}), scale {scale:.2f}"
        )


if __name__ == "__main__":
    main()
