"""pytest fixtures: a fresh headless Slicer scene (real slicer-core objects) per test, and the sample data."""

import os
import sys

import pytest

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, MODULE_DIR)
sys.path.insert(0, os.path.dirname(MODULE_DIR))  # the repository: DevTools, shared with the benchmark scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Every test sees `slicer` as desktop Slicer presents it once its modules are instantiated (no vtkITK or vtkTeem
# classes in it, `import vtkITK` works), not slicer-core's everything-at-import namespace: DesktopSlicer.py has the rules
# and the Slicer source lines. test_desktop_namespace.py imports the module at the earlier, startup moment.
import DesktopSlicer  # noqa: E402

DesktopSlicer.apply(DesktopSlicer.INSTANTIATED)

import AstParse  # noqa: E402

AstParse.install()  # the static tests' ast.parse survives a CPython 3.11.7 bug (see AstParse.py)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: builds or uses a backend environment, a tiny model or a real nnInteractive server (minutes "
        "from empty caches); the quick tier is -m 'not slow'")


@pytest.fixture
def logic():
    """The Logic on a fresh scene: a new headless scene, or inside desktop Slicer the cleared application scene."""
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import createHeadlessRuntime, getRuntime, isDesktopSlicer

    if isDesktopSlicer():
        import slicer

        slicer.mrmlScene.Clear(0)
        return AISegmentationLogic(getRuntime())
    return AISegmentationLogic(createHeadlessRuntime())


@pytest.fixture(scope="session")
def sampleFile():
    from AISegmentationLib.SampleData import fetchSampleFile

    return fetchSampleFile
