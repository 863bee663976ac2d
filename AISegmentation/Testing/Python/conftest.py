"""pytest fixtures: a fresh headless Slicer scene (real slicer-core objects) per test, and the sample data."""

import os
import sys

import pytest

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def logic():
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import createHeadlessRuntime

    return AISegmentationLogic(createHeadlessRuntime())


@pytest.fixture(scope="session")
def sampleFile():
    from AISegmentationLib.SampleData import fetchSampleFile

    return fetchSampleFile
