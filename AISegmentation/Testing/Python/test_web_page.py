"""The web front end end to end in real Chromium: the server (.venv-web, trame-slicer) started on loopback by the
test, Debian's Chromium driven through Playwright, expected values from the Logic in this process on the same files.

Screenshots of each step go to output/web-test/ and are checked not to be blank and to show the overlay colours;
latencies and the server's memory go to output/web-test/measurements.json. With AISEGMENTATION_WEB_SCREENSHOT=PATH
the grow-from-seeds step also writes a small PNG there (the README's screenshot).
"""

import json
import os
import time

import numpy as np
import pytest
from DevTools.TinyModels import nnunetEnvironment, phantomVolume, tinyModels  # noqa: F401 - fixtures
from DevTools.WebPage import (PageDriver, checkScreenshot, launchChromium, residentMegabytes, smallPng,
                              webServer)

pytestmark = pytest.mark.slow

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUTPUT = os.path.join(REPOSITORY, "output", "web-test")
BONE_RANGE = (200.0, 3071.0)
MEASUREMENTS = {"latencyMs": {}, "serverRssMb": {}}


@pytest.fixture(scope="module")
def web(tinyModels):  # noqa: F811 - the tiny models' fixture sets the backend folders the server inherits
    """(driver, server process): the page open in Chromium on a server this module starts and stops."""
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    with webServer() as (url, process), sync_playwright() as playwright:
        MEASUREMENTS["serverStartSeconds"] = round(time.perf_counter() - start, 1)
        browser = launchChromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        loadStart = time.perf_counter()
        page.goto(url)
        driver = PageDriver(page, OUTPUT)
        driver.waitForViews()
        MEASUREMENTS["pageLoadSeconds"] = round(time.perf_counter() - loadStart, 2)
        MEASUREMENTS["serverRssMb"]["afterPageLoad"] = round(residentMegabytes(process.pid))
        yield driver, process
        MEASUREMENTS["serverRssMb"]["atEnd"] = round(residentMegabytes(process.pid))
        MEASUREMENTS["latencyMs"] = driver.latencies
        browser.close()
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, "measurements.json"), "w", encoding="utf-8") as file:
        json.dump(MEASUREMENTS, file, indent=1)
    print("\nWeb page measurements:", json.dumps(MEASUREMENTS))


def segmentColor(driver, name):
    return driver.page.get_attribute(f"#segment-table tr[data-segment='{name}'] td span", "style").split(
        "background:")[1].strip().rstrip(";")


def hexOf(style):
    """'#rrggbb' from a CSS colour Chromium may rewrite as rgb(r, g, b)."""
    if style.startswith("#"):
        return style
    values = [int(v) for v in style[style.index("(") + 1:style.index(")")].split(",")[:3]]
    return "#" + "".join(f"{v:02x}" for v in values)


def addSegment(driver, name):
    driver.fill("#new-segment-name", name)
    driver.click("#add-segment", "add segment")
    assert name in driver.segments()


def test_sample_ct_threshold_equals_the_logic_on_the_same_range(web, logic, sampleFile):
    driver, _ = web
    assert driver.page.input_value("#volume") or driver.segments() == {}
    addSegment(driver, "bone")
    driver.fill("#threshold-min", BONE_RANGE[0])
    driver.fill("#threshold-max", BONE_RANGE[1])
    driver.click("#threshold-apply", "threshold")

    volume = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    segmentation = logic.createSegmentation(volume)
    bone = logic.addSegment(segmentation, "bone")
    logic.threshold(volume, segmentation, bone, *BONE_RANGE)
    expected = int(logic.segmentArray(segmentation, bone, volume).sum())
    assert expected > 1000
    assert driver.segments()["bone"] == expected
    checkScreenshot(driver.screenshot("01-threshold"), [hexOf(segmentColor(driver, "bone"))])


def test_paint_stroke_changes_the_count_and_undo_restores_it(web):
    driver, _ = web
    before = driver.segments()["bone"]
    driver.selectSegment("bone")
    driver.page.click("#tool-paint")
    driver.page.wait_for_timeout(500)
    driver.act("editor stroke", lambda: driver.stroke([(0.30, 0.45), (0.40, 0.45), (0.40, 0.50)]))
    painted = driver.segments()["bone"]
    assert painted > before + 50, (before, painted)
    checkScreenshot(driver.screenshot("02-paint"), [hexOf(segmentColor(driver, "bone"))])
    driver.click("#undo", "undo")
    assert driver.segments()["bone"] == before
    driver.page.click("#tool-none")


def test_grow_from_seeds_from_painted_seeds(web):
    driver, _ = web
    driver.fill("#new-segmentation-name", "Grow")
    driver.click("#new-segmentation", "new segmentation")
    addSegment(driver, "inside")
    addSegment(driver, "outside")
    for name, points in (("inside", [(0.40, 0.40), (0.55, 0.40), (0.55, 0.45)]),
                         ("outside", [(0.08, 0.06), (0.30, 0.06), (0.30, 0.10)])):
        driver.selectSegment(name)
        driver.page.click("#tool-paint")
        driver.page.wait_for_timeout(300)
        driver.act("editor stroke", lambda points=points: driver.stroke(points))
        driver.page.click("#tool-none")
        driver.page.wait_for_timeout(300)
    seeds = driver.segments()
    assert seeds["inside"] > 0 and seeds["outside"] > 0, seeds
    driver.click("#grow-preview", "grow from seeds preview")
    preview = driver.screenshot("03-grow-preview")
    driver.click("#grow-apply", "grow from seeds apply")
    grown = driver.segments()
    assert grown["inside"] > 20 * seeds["inside"] and grown["outside"] > 20 * seeds["outside"], (seeds, grown)
    colors = [hexOf(segmentColor(driver, name)) for name in ("inside", "outside")]
    checkScreenshot(preview, [])
    path = driver.screenshot("04-grow-apply")
    checkScreenshot(path, colors)
    readme = os.environ.get("AISEGMENTATION_WEB_SCREENSHOT")
    if readme:
        smallPng(path, readme)


def test_comparison_table_shows_the_engines_dice(web, logic, sampleFile, tmp_path):
    driver, _ = web
    volume = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    paths = {}
    for name, low in (("reference", 200.0), ("compared", 350.0)):
        segmentation = logic.createSegmentation(volume, name)
        logic.threshold(volume, segmentation, logic.addSegment(segmentation, "bone"), low, 3071.0)
        paths[name] = logic.saveSegmentation(segmentation, str(tmp_path / f"{name}.seg.nrrd"))
    rows, _ = logic.compareSegmentations(logic.loadSegmentation(paths["reference"]),
                                         logic.loadSegmentation(paths["compared"]))
    expected = rows[0]["result"].dice
    assert 0.5 < expected < 0.99

    driver.openSection("compare")
    driver.choose("#file-kind", "Segmentation")
    for name in ("reference", "compared"):
        driver.fill("#server-path", paths[name])
        driver.click("#load-path", "load path")
    driver.choose("#compare-reference", "reference")
    driver.choose("#compare-compared", "compared")
    driver.click("#compare-run", "compare")
    cell = driver.page.inner_text("#comparison-table tr[data-pair='bone / bone'] td[data-metric='dice']")
    assert float(cell) == pytest.approx(expected, abs=1e-4)
    with driver.page.expect_download() as download:
        driver.page.click("#compare-csv")
    csvText = open(download.value.path(), encoding="utf-8").read()
    assert csvText.startswith("Reference segment,Compared segment,Dice") and f"{expected:.6f}"[:6] in csvText
    checkScreenshot(driver.screenshot("05-compare"), [])


def test_tiny_nnunet_model_runs_from_the_page_with_progress(web, logic, tinyModels, tmp_path):  # noqa: F811
    driver, process = web
    (volume,), truth = phantomVolume(logic, seed=951)
    path = logic.saveVolume(volume, str(tmp_path / "phantom.nrrd"))
    driver.choose("#file-kind", "Volume")
    driver.fill("#server-path", path)
    driver.click("#load-path", "load path")
    driver.openSection("ai")
    driver.choose("#ai-backend", "nnU-Net")
    driver.fill("#ai-option-modelFolders", tinyModels["phantomModel"])
    driver.fill("#ai-option-folds", "0")
    driver.choose("#ai-option-device", "cpu")
    driver.page.uncheck("#ai-option-tta")
    before = driver.actionCount()
    start = time.perf_counter()
    driver.page.click("#ai-run")
    progress, messages = set(), set()
    while driver.actionCount() < before + 2 and time.perf_counter() - start < 300:  # "AI start", then "AI run"
        progress.add(float(driver.page.get_attribute("#ai-progress", "aria-valuenow") or 0))
        messages.add(driver.page.inner_text("#ai-message"))
        MEASUREMENTS["serverRssMb"]["duringAiRun"] = round(residentMegabytes(process.pid))
        driver.page.wait_for_timeout(250)
    driver.waitForAction("AI run", before + 1, timeout=5)
    driver.latencies["AI run"] = [round((time.perf_counter() - start) * 1000.0)]
    assert any(0 < value < 100 for value in progress), progress
    assert len(messages - {""}) >= 2, messages
    result = driver.segments()
    assert result and all(count > 0 for count in result.values()), result
    truthVoxels = int((truth > 0).sum())
    assert 0.7 * truthVoxels < sum(result.values()) < 1.3 * truthVoxels, (result, truthVoxels)
    checkScreenshot(driver.screenshot("06-ai-result"), [hexOf(segmentColor(driver, name)) for name in result],
                    minimumPixels=10)
    assert np.isfinite(MEASUREMENTS["serverRssMb"]["duringAiRun"])
