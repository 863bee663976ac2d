"""The web page's Train panel in real Chromium (DevTools/WebPage.py): four phantom cases loaded by path (a volume and
its label map each), a dataset from the page's segmentations, the tiny plan, a 1-epoch fit of both folds with one row
per epoch, then a longer fit cancelled after an epoch (its checkpoint kept). The server is started on loopback by the
test, its training folder a temporary one."""

import os
import time

import numpy as np
import pytest
from DevTools import build_tiny_models
from DevTools.TinyModels import nnunetEnvironment  # noqa: F401 - fixture
from DevTools.WebPage import PageDriver, launchChromium, webServer

pytestmark = pytest.mark.slow

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUTPUT = os.path.join(REPOSITORY, "output", "web-test")
CASES = 4


def _writeCases(folder):
    import SimpleITK as sitk

    paths = []
    for index in range(CASES):
        channels, truth = build_tiny_models.phantomCase(700 + index)
        image, labels = str(folder / f"img{index}.nii.gz"), str(folder / f"lab{index}.nii.gz")
        sitk.WriteImage(sitk.GetImageFromArray(channels[0].astype(np.float32)), image)
        sitk.WriteImage(sitk.GetImageFromArray(truth.astype(np.uint8)), labels)
        paths.append((image, labels))
    return paths


def _load(driver, kind, path):
    driver.choose("#file-kind", kind)
    driver.fill("#server-path", path)
    driver.click("#load-path", "load path")


def _epochRows(driver):
    return driver.page.eval_on_selector_all("#train-epochs-table tbody tr", "rows => rows.map(r => r.dataset.epoch)")


def test_train_panel_builds_plans_fits_with_epochs_and_cancels(nnunetEnvironment, tmp_path,  # noqa: F811
                                                               monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("AISEGMENTATION_WEB_TRAINING_DIR", str(tmp_path / "training"))
    cases = _writeCases(tmp_path)
    with webServer(["--no-sample"]) as (url, _process), sync_playwright() as playwright:
        browser = launchChromium(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        driver = PageDriver(page, OUTPUT)
        driver.waitForViews()
        for image, labels in cases:
            _load(driver, "Volume", image)
            _load(driver, "Label map", labels)
        driver.openSection("train")
        page.locator("#train-cases").locator("xpath=ancestor::div[contains(@class, 'v-field')][1]").click()
        for index in range(CASES):
            page.locator(".v-overlay--active .v-list-item", has_text=f"lab{index}").first.click()
        page.keyboard.press("Escape")
        driver.fill("#train-project", "phantoms")
        driver.click("#train-dataset", "train dataset")
        assert "4 training cases; labels" in page.inner_text("#train-message")

        driver.click("#train-plan", "train plan start")
        driver.waitForAction("train plan: ", driver.actionCount(), timeout=600)
        assert page.inner_text("#train-message").startswith("Plan: spacing [1.0, 1.0, 1.0] mm, patch [32, 32, 32]")

        driver.fill("#train-epochs", "1")
        before = driver.actionCount()
        page.click("#train-fit")
        progress = set()
        deadline = time.time() + 600
        while driver.actionCount() < before + 2 and time.time() < deadline:  # "train fit start", then "train fit"
            progress.add(float(page.get_attribute("#train-progress", "aria-valuenow") or 0))
            page.wait_for_timeout(250)
        driver.waitForAction("train fit", before + 1, timeout=5)
        assert any(0 < value < 100 for value in progress), progress
        assert _epochRows(driver) == ["0-1", "1-1"]
        assert page.inner_text("#train-message").startswith("Trained: 3d_fullres/0, 3d_fullres/1 (")
        driver.screenshot("10-train-fit")

        driver.fill("#train-epochs", "20")  # more epochs for the finished folds: trains on; cancelled after one
        before = driver.actionCount()
        page.click("#train-fit")
        page.wait_for_selector("#train-epochs-table tr[data-epoch='0-2']", timeout=600000)
        page.click("#train-cancel")
        page.wait_for_function("(after) => /train fit: error/.test(document.querySelector('#action-log')"
                               ".textContent) && Number(document.querySelector('#action-log').dataset.count) > "
                               "after", arg=before, timeout=120000)
        assert page.inner_text("#train-message").startswith("Cancelled")
        assert _epochRows(driver)[0] == "0-2"  # trained on from fold 0's final checkpoint
        browser.close()
    fold0 = tmp_path / "training" / "phantoms" / "nnUNet_results" / "Dataset501_phantoms"
    assert (fold0 / "nnUNetTrainer__nnUNetPlans__3d_fullres" / "fold_0" / "checkpoint_latest.pth").is_file()
