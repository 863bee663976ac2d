"""One undo history per segmentation in the panel: the embedded segment editor's (EmbeddedSegmentEditor.py models
the widget from Slicer's source)."""


import numpy as np
import pytest

from DevTools.SyntheticImages import makeVolume
from EmbeddedSegmentEditor import EmbeddedEditor


@pytest.fixture
def panel(logic):
    image = np.zeros((20, 20, 20), np.int16)
    image[8:12, 8:12, 8:12] = 500  # what the threshold tool segments
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume, "panel")
    segmentId = logic.addSegment(segmentation, "structure")
    logic.segmentEditor.bind(segmentation, volume)
    editor = EmbeddedEditor(logic.segmentEditor.editorNode, segmentation, volume)
    logic.segmentEditor.useUndoHistoryOf(editor)
    return logic, volume, segmentation, segmentId, editor


def _voxels(logic, segmentation, segmentId, volume):
    return int(logic.segmentArray(segmentation, segmentId, volume).sum())


def test_paint_module_write_paint_then_undo_undo_redo_walk_one_history(panel):
    logic, volume, segmentation, segmentId, editor = panel
    editor.paint(segmentId, np.s_[0:2, 0:2, 0:2])  # 8 voxels
    logic.threshold(volume, segmentation, segmentId, 400, 600)  # "set": the 64 bright voxels replace the stroke
    editor.paint(segmentId, np.s_[18:20, 18:20, 18:20])  # +8
    states = [_voxels(logic, segmentation, segmentId, volume)]
    editor.undo()  # Ctrl+Z in the embedded editor: the second stroke
    states.append(_voxels(logic, segmentation, segmentId, volume))
    editor.undo()  # then the module's threshold, not the first stroke and the threshold together
    states.append(_voxels(logic, segmentation, segmentId, volume))
    editor.redo()
    states.append(_voxels(logic, segmentation, segmentId, volume))
    assert states == [72, 64, 8, 64]


def test_the_modules_undo_and_redo_are_the_embedded_editors(panel):
    logic, volume, segmentation, segmentId, editor = panel
    logic.threshold(volume, segmentation, segmentId, 400, 600)
    editor.paint(segmentId, np.s_[0:2, 0:2, 0:2])
    logic.undo(segmentation)  # the panel's Undo after "tool, then paint": the paint only
    assert _voxels(logic, segmentation, segmentId, volume) == 64
    logic.undo(segmentation)
    assert _voxels(logic, segmentation, segmentId, volume) == 0
    logic.redo(segmentation)
    assert _voxels(logic, segmentation, segmentId, volume) == 64


def test_writes_into_another_segmentation_keep_the_logics_own_history(panel):
    logic, volume, _segmentation, _segmentId, _editor = panel
    other = logic.createSegmentation(volume, "other")
    otherId = logic.addSegment(other, "bright")
    logic.threshold(volume, other, otherId, 400, 600)
    assert logic.canUndo(other)
    logic.undo(other)
    assert _voxels(logic, other, otherId, volume) == 0


def test_headless_the_logic_keeps_its_own_history(logic):
    volume = makeVolume(logic, np.pad(np.full((4, 4, 4), 500, np.int16), 4))
    segmentation = logic.createSegmentation(volume, "headless")
    segmentId = logic.addSegment(segmentation, "bright")
    logic.threshold(volume, segmentation, segmentId, 400, 600)
    logic.undo(segmentation)
    assert _voxels(logic, segmentation, segmentId, volume) == 0
    logic.redo(segmentation)
    assert _voxels(logic, segmentation, segmentId, volume) == 64
