"""The web front end end to end in real Chromium: the server (.venv-web, trame-slicer) started on loopback by the
test, Debian's Chromium driven through Playwright, expected values from the Logic in this process on the same files.

Screenshots of each step go to output/web-test/ and are checked not to be blank and to show the overlay colours;
latencies and the server's memory go to output/web-test/measurements.json. With AISEGMENTATION_WEB_SCREENSHOT=PATH
the threshold step also writes a small PNG there (the README's screenshot).
"""

import json
import os
import subprocess
import time

import numpy as np
import pytest
import slicer
from DevTools.InteractiveServers import ServerProcess, freePort, skipWithoutServers, tinyModel
from DevTools.SyntheticImages import ball, makeVolume
from DevTools.TinyModels import nnunetEnvironment, phantomVolume, tinyModels  # noqa: F401 - fixtures
from DevTools.WebPage import (PageDriver, checkScreenshot, ensureWebEnvironment, launchChromium, residentMegabytes,
                              smallPng, webServer)

pytestmark = pytest.mark.slow

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUTPUT = os.path.join(REPOSITORY, "output", "web-test")
BONE_RANGE = (200.0, 3071.0)
MEASUREMENTS = {"latencyMs": {}, "serverRssMb": {}}
UPLOAD_LIMIT_MB = 1
INTERACTIVE_PORT = freePort()  # the nnInteractive server the page may reach (--interactive-server)


@pytest.fixture(scope="module")
def web(tinyModels):  # noqa: F811 - the tiny models' fixture sets the backend folders the server inherits
    """(driver, server process): the page open in Chromium on a server this module starts and stops."""
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    arguments = ["--max-upload-mb", str(UPLOAD_LIMIT_MB), "--interactive-server", f"http://127.0.0.1:{INTERACTIVE_PORT}"]
    with webServer(arguments) as (url, process), sync_playwright() as playwright:
        MEASUREMENTS["serverStartSeconds"] = round(time.perf_counter() - start, 1)
        browser = launchChromium(playwright)
        MEASUREMENTS["chromium"] = browser.version
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        loadStart = time.perf_counter()
        page.goto(url)
        driver = PageDriver(page, OUTPUT)
        driver.waitForViews()
        MEASUREMENTS["pageLoadSeconds"] = round(time.perf_counter() - loadStart, 2)
        MEASUREMENTS["serverRssMb"]["afterPageLoad"] = round(residentMegabytes(process.pid))
        MEASUREMENTS["url"] = url.split("?")[0]
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
    assert driver.selectedText("#volume") == "example_ct" and driver.segments() == {}
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
    path = driver.screenshot("01-threshold")
    checkScreenshot(path, [hexOf(segmentColor(driver, "bone"))])
    readme = os.environ.get("AISEGMENTATION_WEB_SCREENSHOT")
    if readme:
        smallPng(path, readme)


def test_auto_threshold_range_and_islands_equal_the_logic(web, logic, sampleFile):
    driver, _ = web
    volume = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    expectedRange = logic.autoThresholdRange(volume, "Otsu", "SET_LOWER_MAX", BONE_RANGE)
    driver.click("#threshold-auto", "auto threshold range")
    shown = (float(driver.page.input_value("#threshold-min")), float(driver.page.input_value("#threshold-max")))
    assert shown == pytest.approx(expectedRange, abs=1e-3)

    segmentation = logic.createSegmentation(volume)
    bone = logic.addSegment(segmentation, "bone")
    logic.threshold(volume, segmentation, bone, *BONE_RANGE)
    logic.keepLargestIsland(volume, segmentation, bone)
    expected = int(logic.segmentArray(segmentation, bone, volume).sum())
    before = driver.segments()["bone"]
    driver.click("#keep-largest", "keep largest island")
    assert driver.segments()["bone"] == expected < before
    driver.click("#undo", "undo")
    assert driver.segments()["bone"] == before
    driver.fill("#threshold-min", BONE_RANGE[0])
    driver.fill("#threshold-max", BONE_RANGE[1])


def test_paint_stroke_changes_the_count_and_undo_restores_it(web):
    driver, _ = web
    before = driver.segments()["bone"]
    driver.selectSegment("bone")
    driver.page.click("#tool-paint")
    driver.page.wait_for_timeout(500)
    try:  # the paint tool is left active on failure too, or the next test's click on it would switch it off
        driver.act("editor stroke", lambda: driver.stroke([(0.30, 0.45), (0.40, 0.45), (0.40, 0.50)]))
        painted = driver.segments()["bone"]
        assert painted > before + 50, (before, painted)
        checkScreenshot(driver.screenshot("02-paint"), [hexOf(segmentColor(driver, "bone"))])
        driver.click("#undo", "undo")
        assert driver.segments()["bone"] == before
    finally:
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


def test_saved_segmentation_label_map_and_volume_hold_the_pages_data(web, logic, sampleFile):
    driver, _ = web
    driver.openSection("files")
    shown = driver.segments()
    volume = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    with driver.page.expect_download() as download:
        driver.page.click("#save-segmentation")
    assert download.value.suggested_filename == "Grow.seg.nrrd"
    segmentationPath = os.path.join(OUTPUT, "Grow.seg.nrrd")
    download.value.save_as(segmentationPath)
    saved = logic.loadSegmentation(segmentationPath)
    assert {row["segment"]: row["voxels"] for row in logic.segmentStatistics(saved, volume)} == shown
    with driver.page.expect_download() as download:
        driver.page.click("#save-labelmap")
    labelmapPath = os.path.join(OUTPUT, "Grow.nii.gz")
    download.value.save_as(labelmapPath)
    imported = logic.importLabelmap(labelmapPath, None, volume)
    assert sorted(row["voxels"] for row in logic.segmentStatistics(imported, volume)) == sorted(shown.values())
    with driver.page.expect_download() as download:
        driver.page.click("#save-volume")
    assert download.value.suggested_filename == "example_ct.nrrd"
    volumePath = os.path.join(OUTPUT, "example_ct.nrrd")
    download.value.save_as(volumePath)
    assert np.array_equal(slicer.util.arrayFromVolume(logic.loadVolume(volumePath)),
                          slicer.util.arrayFromVolume(volume))


def test_a_generated_classic_tool_runs_from_the_page(web):
    """Watershed's controls are drawn from its declaration (AISegmentationWeb/GeneratedTools.py): a bad option value
    is the page's error and changes nothing; a good one floods from the page's segments (Grow's inside / outside)."""
    driver, _ = web
    driver.openSection("classic")
    driver.choose("#classic-tool", "Watershed")
    before = driver.segments()
    driver.fill("#classic-option-objectScaleMm", "-1")
    count = driver.actionCount()
    driver.page.click("#classic-apply")
    driver.page.wait_for_function("(after) => Number(document.querySelector('#action-log').dataset.count) > after",
                                  arg=count, timeout=60000)
    assert ": error" in driver.page.inner_text("#action-log")
    assert "objectscalemm" in driver.page.inner_text("#error").lower()
    assert driver.segments() == before
    driver.fill("#classic-option-objectScaleMm", "1")
    driver.click("#classic-apply", "classic tool")
    after = driver.segments()
    assert set(after) == set(before) == {"inside", "outside"}
    assert all(after.values()) and after != before, (before, after)


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


def test_uploads_load_and_a_file_above_the_limit_is_refused(web, sampleFile):
    driver, _ = web
    driver.openSection("files")
    driver.choose("#file-kind", "Volume")
    small, large = sampleFile("example_ct_sm.nii.gz"), sampleFile("example_ct.nii.gz")
    assert os.path.getsize(small) < UPLOAD_LIMIT_MB * 2**20 < os.path.getsize(large)
    before = driver.actionCount()
    driver.page.set_input_files("#upload", large)
    driver.page.wait_for_function("(after) => Number(document.querySelector('#action-log').dataset.count) > after",
                                  arg=before)
    assert "error" in driver.page.inner_text("#action-log")
    assert "uploads are limited to 1 MB" in driver.page.inner_text("#error")
    assert driver.selectedText("#volume") == "example_ct"  # nothing loaded
    driver.act("upload", lambda: driver.page.set_input_files("#upload", small))
    assert driver.selectedText("#volume") == "example_ct_sm"


def test_tiny_nnunet_model_runs_from_the_page_with_progress(web, logic, tinyModels, tmp_path):  # noqa: F811
    driver, process = web
    (volume,), truth = phantomVolume(logic, seed=951)
    path = logic.saveVolume(volume, str(tmp_path / "phantom.nrrd"))
    driver.choose("#file-kind", "Volume")
    driver.fill("#server-path", path)
    driver.click("#load-path", "load path")
    driver.openSection("ai")
    driver.choose("#ai-backend", "nnU-Net")
    assert driver.page.inner_text("#ai-environment") == "Environment: ready"
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

    # Cancel: a second run, cancelled once it reports progress; nothing new is written.
    segmentationsBefore = driver.page.locator("#segmentation").evaluate("e => e.value")
    before = driver.actionCount()
    driver.page.click("#ai-run")
    driver.page.wait_for_function("() => !document.querySelector('#ai-cancel').disabled")
    driver.page.wait_for_function(
        "() => Number(document.querySelector('#ai-progress').getAttribute('aria-valuenow')) > 0")
    driver.page.click("#ai-cancel")
    driver.page.wait_for_function("(after) => /AI run: error/.test(document.querySelector('#action-log')"
                                  ".textContent) && Number(document.querySelector('#action-log').dataset.count) > "
                                  "after", arg=before, timeout=60000)
    assert driver.page.inner_text("#ai-message") == "Cancelled"
    assert driver.page.locator("#segmentation").evaluate("e => e.value") == segmentationsBefore


def test_a_wrong_token_gets_no_page(web):
    driver, _ = web
    other = driver.page.context.browser.new_page()
    other.goto(MEASUREMENTS["url"] + "?secret=not-the-token-of-this-server")
    other.wait_for_timeout(4000)
    assert other.query_selector("#load-sample") is None
    other.close()


def test_another_host_than_loopback_needs_a_token():
    result = subprocess.run([ensureWebEnvironment(), "-m", "AISegmentationWeb", "--host", "0.0.0.0"],
                            cwd=os.path.join(REPOSITORY, "AISegmentation"), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "give a token" in result.stderr, result.stderr


def test_nninteractive_point_by_clicking_in_the_axial_view(web, logic, tmp_path):
    """A real nnInteractive server (current generation, tiny model, CPU) on loopback; the prompt is a click."""
    skipWithoutServers()
    driver, _ = web
    # Two spheres of different sizes left and right of the centre: the click must select the one under it. The
    # axial view fits the volume's 64 mm width; radiological convention: larger RAS x (patient right) on the left.
    shape = (40, 48, 64)
    sphere = ball(shape, (20, 24, 16), (8, 8, 8))  # RAS x = 16 mm: right of the view's centre (x = 31.5)
    other = ball(shape, (20, 24, 48), (5, 5, 5))
    image = 10 + 100 * sphere + 140 * other + np.random.default_rng(3).normal(0, 4, shape)
    volume = makeVolume(logic, image.astype(np.int16), name="sphere")
    path = logic.saveVolume(volume, str(tmp_path / "sphere.nrrd"))
    server = ServerProcess("current", tinyModel(), port=INTERACTIVE_PORT)
    try:
        driver.openSection("files")
        driver.choose("#file-kind", "Volume")
        driver.fill("#server-path", path)
        driver.click("#load-path", "load path")
        addSegment(driver, "target")
        driver.openSection("interactive")
        driver.fill("#interactive-url", server.url)
        driver.click("#interactive-connect", "nnInteractive connect")
        driver.click("#interactive-start", "nnInteractive start")
        driver.page.click("#interactive-clicks")
        driver.page.wait_for_timeout(500)
        box = driver.axialViewBox()
        clickX = box["x"] + box["width"] * (0.5 + (31.5 - 16.0) / 64.0)
        driver.act("nnInteractive point", lambda: driver.page.mouse.click(clickX, box["y"] + box["height"] / 2),
                   timeout=120)
        voxels = driver.segments()["target"]
        assert 0.6 * sphere.sum() < voxels < 1.6 * sphere.sum(), (voxels, int(sphere.sum()))
        checkScreenshot(driver.screenshot("07-interactive"), [hexOf(segmentColor(driver, "target"))])
    finally:
        driver.page.click("#interactive-clicks")
        server.stop()
