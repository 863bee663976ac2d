"""Driving the web front end in a real browser: its environment (.venv-web), its server as a subprocess on loopback,
Debian's Chromium through Playwright, and checks of screenshots (not blank, overlay colours present).

The server runs in .venv-web (trame-slicer's slicer-core); the test process (main .venv) drives Chromium and keeps
its own Logic for the expected values.
"""

import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEB_SETUP = os.path.join(REPOSITORY, "AISegmentation", "AISegmentationWeb", "setup_env.sh")
WEB_PYTHON = os.path.join(REPOSITORY, ".venv-web", "bin", "python")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
URL_LINE_PREFIX = "AISegmentation web: "  # what AISegmentationWeb's __main__ prints


def ensureWebEnvironment():
    """Create or update .venv-web (idempotent: a no-op while its requirements are unchanged); its Python."""
    result = subprocess.run(["bash", WEB_SETUP], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"Creating the web environment failed:\n{result.stderr[-3000:]}")
    return WEB_PYTHON


def residentMegabytes(pid):
    """Resident memory (VmRSS) of a process in MB."""
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@contextlib.contextmanager
def webServer(arguments=(), timeout=120.0):
    """Start `python -m AISegmentationWeb` on 127.0.0.1 (a free port) in .venv-web; yields (url, process); the
    server is stopped (SIGTERM, then SIGKILL) when the block ends. The environment (backend folders) is inherited."""
    python = ensureWebEnvironment()
    environment = dict(os.environ, PYTHONPATH=os.path.join(REPOSITORY, "AISegmentation"), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([python, "-m", "AISegmentationWeb", "--host", "127.0.0.1", "-v", *arguments],
                               cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    lines, output = queue.Queue(), []

    def read():
        for line in process.stdout:
            output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        url = _waitForUrl(lines, output, timeout)
        yield url, process
    finally:
        stopServer(process)
        sys.stdout.write("".join(line for line in output if " action " in line or "Error" in line)[-4000:])


def stopServer(process):
    """End a web server started in its own process group: SIGTERM, then SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _waitForUrl(lines, output, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.time()))
        except queue.Empty:
            break
        if line is None:
            raise RuntimeError(f"The web server ended before it served:\n{''.join(output)[-4000:]}")
        if line.startswith(URL_LINE_PREFIX):
            return line[len(URL_LINE_PREFIX):].strip()
    raise RuntimeError(f"The web server printed no URL within {timeout:.0f} s:\n{''.join(output)[-4000:]}")


def launchChromium(playwright):
    """Debian's Chromium, headless, fresh profile (Playwright makes a temporary user data folder)."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class PageDriver:
    """The page's controls by their ids, and its action log: each server action ends with "#N name: ok|error"."""

    def __init__(self, page, screenshotFolder):
        self.page = page
        self.screenshotFolder = screenshotFolder
        self.latencies = {}
        os.makedirs(screenshotFolder, exist_ok=True)

    def actionCount(self):
        return int(self.page.get_attribute("#action-log", "data-count") or 0)

    def waitForAction(self, name, after, timeout=60.0):
        """Wait for action `name` after count `after`; returns its log line; AssertionError on an error."""
        self.page.wait_for_function(
            "([name, after]) => { const e = document.querySelector('#action-log');"
            " return e && Number(e.dataset.count) > after && e.textContent.includes(name); }",
            arg=[name, after], timeout=timeout * 1000)
        line = self.page.inner_text("#action-log")
        error = self.page.inner_text("#error") if self.page.query_selector("#error") else ""
        assert ": ok" in line, f"{line}: {error}"
        return line

    def act(self, name, operation, timeout=60.0):
        """Run operation() (clicks, typing) and wait for the server's action `name`; records the latency."""
        before = self.actionCount()
        start = time.perf_counter()
        operation()
        line = self.waitForAction(name, before, timeout)
        self.latencies.setdefault(name, []).append(round((time.perf_counter() - start) * 1000.0))
        return line

    def click(self, selector, name, timeout=60.0):
        return self.act(name, lambda: self.page.click(selector), timeout)

    def fill(self, selector, text):
        self.page.fill(selector, str(text))

    def openSection(self, key):
        """Open a section of the side panel (an expansion panel) when it is closed, and scroll it into view."""
        panel = self.page.locator(f"#section-{key}")
        if "v-expansion-panel--active" not in (panel.get_attribute("class") or ""):
            panel.locator(".v-expansion-panel-title").first.click()
            self.page.wait_for_timeout(400)
        panel.scroll_into_view_if_needed()

    def choose(self, selector, optionText):
        """Pick an item of a Vuetify select (its input carries the id) by its visible text."""
        self.page.locator(selector).locator("xpath=ancestor::div[contains(@class, 'v-field')][1]").click()
        self.page.locator(".v-overlay--active .v-list-item", has_text=optionText).first.click()
        self.page.wait_for_timeout(300)

    def selectedText(self, selector):
        """The text a Vuetify select shows (its selection)."""
        return self.page.locator(selector).locator(
            "xpath=ancestor::div[contains(@class, 'v-field')][1]").locator(".v-select__selection").inner_text()

    def segments(self):
        """{segment name: voxel count} from the page's segment table."""
        rows = self.page.query_selector_all("#segment-table tr[data-segment]")
        return {row.get_attribute("data-segment"): int(row.get_attribute("data-voxels")) for row in rows}

    def selectSegment(self, name):
        self.page.click(f"#segment-table tr[data-segment='{name}']")
        self.page.wait_for_timeout(300)

    def axialViewBox(self):
        """Bounding box of the largest view image (the axial view)."""
        boxes = [element.bounding_box() for element in self.page.query_selector_all("#views img")]
        boxes = [box for box in boxes if box and box["width"] > 50]
        return max(boxes, key=lambda box: box["width"] * box["height"])

    def stroke(self, points, steps=8, pauseMs=60):
        """A mouse drag through points given as fractions (x, y) of the axial view, at a hand's pace: the page's
        remote view drops mouse moves that follow each other within its throttle delay (vtk.js' remote interactor
        style), so a drag dispatched at machine speed on a loaded machine reached the server as one click."""
        box = self.axialViewBox()
        xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
        mouse = self.page.mouse
        mouse.move(*xy[0])
        self.page.wait_for_timeout(pauseMs)
        mouse.down()
        self.page.wait_for_timeout(pauseMs)
        for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
            for step in range(1, steps + 1):
                mouse.move(x0 + (x1 - x0) * step / steps, y0 + (y1 - y0) * step / steps)
                self.page.wait_for_timeout(pauseMs)
        mouse.up()

    def waitForViews(self, timeout=60.0):
        """Wait until the slice views show images (the remote rendering has arrived)."""
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('#views img')].filter(i => i.naturalWidth > 50).length >= 3",
            timeout=timeout * 1000)

    def screenshot(self, name):
        self.page.wait_for_timeout(700)  # the views' next image after the last change
        path = os.path.join(self.screenshotFolder, f"{name}.png")
        self.page.screenshot(path=path)
        return path


def readPng(path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def colorPixelCount(pixels, hexColor, tolerance=40):
    """Pixels within `tolerance` (per channel) of a colour."""
    rgb = np.array([int(hexColor[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.all(np.abs(pixels.astype(int) - rgb) <= tolerance, axis=-1).sum())


def checkScreenshot(path, colors=(), minimumPixels=30):
    """The screenshot is not blank (varied pixels) and shows each overlay colour; returns {colour: pixels}."""
    pixels = readPng(path)
    assert pixels.std() > 20, f"{path} looks blank (pixel std {pixels.std():.1f})"
    counts = {color: colorPixelCount(pixels, color) for color in colors}
    for color, count in counts.items():
        assert count >= minimumPixels, f"{path}: overlay colour {color} in only {count} pixels"
    return counts


def smallPng(source, destination, width=900):
    """A copy for the README: scaled to `width` and reduced to a 128-colour palette (about 100 KB)."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(destination, optimize=True)
    return destination
