"""The panel's embedded segment editor: inputs reach it without errors in Slicer's log, and the widget wires the one
undo history (EmbeddedSegmentEditor.py models qMRMLSegmentEditorWidget from Slicer's source)."""

import ast

import numpy as np

from AISegmentationLib.SegmentEditing import showInputsInEditor
from DevTools.SyntheticImages import makeVolume
from EmbeddedSegmentEditor import EmbeddedEditor
from ModuleSource import moduleClass, moduleTree


def test_the_model_logs_the_error_slicer_logs_for_a_source_volume_without_a_segmentation(logic):
    volume = makeVolume(logic, np.zeros((4, 4, 4), np.int16))
    editor = EmbeddedEditor(logic.segmentEditor.editorNode)
    editor.setSourceVolumeNode(volume)  # what the panel did on every parameter change before a segmentation was set
    assert len(editor.errors) == 1


def test_parameter_changes_without_a_segmentation_log_nothing_and_the_volume_follows_the_segmentation(logic):
    volume = makeVolume(logic, np.zeros((4, 4, 4), np.int16))
    editor = EmbeddedEditor(logic.segmentEditor.editorNode)
    for _change in range(3):
        assert showInputsInEditor(editor, None, volume) is False
    assert editor.errors == [] and editor.sourceVolumeNode() is None
    segmentation = logic.createSegmentation(volume, "s")
    assert showInputsInEditor(editor, segmentation, volume) is True
    assert showInputsInEditor(editor, segmentation, volume) is False
    assert editor.errors == []
    assert editor.segmentationNode().GetID() == segmentation.GetID()
    assert editor.sourceVolumeNode().GetID() == volume.GetID()


def _calls(function):
    return [node.func.attr for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)]


def _method(className, name):
    return next(node for node in moduleClass(className, moduleTree()).body
                if isinstance(node, ast.FunctionDef) and node.name == name)


def test_the_widget_gives_its_inputs_through_the_helper_and_never_sets_the_source_volume_itself():
    widget = moduleClass("AISegmentationWidget", moduleTree())
    assert "setSourceVolumeNode" not in _calls(widget)
    assert "showInputsInEditor" in [node.func.id for node in ast.walk(_method("AISegmentationWidget",
                                                                               "_onParameterNodeModified"))
                                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]


def test_the_widget_shares_the_embedded_editors_undo_history_and_offers_redo():
    assert "useUndoHistoryOf" in _calls(_method("AISegmentationWidget", "_setupSegmentEditor"))
    assert "undo" in _calls(_method("AISegmentationWidget", "onUndo"))
    assert "redo" in _calls(_method("AISegmentationWidget", "onRedo"))
