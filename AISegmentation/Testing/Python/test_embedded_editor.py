"""The panel's embedded segment editor: inputs reach it without errors in Slicer's log, and the widget wires the one
undo history (EmbeddedSegmentEditor.py models qMRMLSegmentEditorWidget from Slicer's source)."""

import ast

import numpy as np

from AISegmentationLib.SegmentEditing import showInputsInEditor
from DevTools.SyntheticImages import makeVolume
from EmbeddedSegmentEditor import EmbeddedEditor
from ModuleSource import moduleClass, moduleTree, widgetClasses


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
    assert all("setSourceVolumeNode" not in _calls(node) for node in widgetClasses())
    assert "showInputsInEditor" in [node.func.id for node in ast.walk(_method("AISegmentationWidget",
                                                                               "_onParameterNodeModified"))
                                    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]


def test_the_widget_shares_the_embedded_editors_undo_history_and_offers_redo():
    assert "useUndoHistoryOf" in _calls(_method("AISegmentationWidget", "_setupSegmentEditor"))
    assert "undo" in _calls(_method("AISegmentationWidget", "onUndo"))
    assert "redo" in _calls(_method("AISegmentationWidget", "onRedo"))


# qMRMLSegmentEditorWidget's API as Slicer 5.10.0 declares it (Modules/Loadable/Segmentations/Widgets/
# qMRMLSegmentEditorWidget.h, line of each declaration; all still there in 5.12.0): the widget may call only these.
SEGMENT_EDITOR_WIDGET_API = {
    "segmentationNode": 100, "sourceVolumeNode": 104, "currentSegmentID": 121, "setActiveEffect": 124,
    "removeViewObservations": 172, "setMRMLScene": 285, "setMRMLSegmentEditorNode": 288, "setSegmentationNode": 294,
    "setSourceVolumeNode": 300, "setCurrentSegmentID": 318, "saveStateForUndo": 325,
    "setSegmentationNodeSelectorVisible": 331, "setSourceVolumeNodeSelectorVisible": 333,
    "setSwitchToSegmentationsButtonVisible": 351, "setMaximumNumberOfUndoStates": 355, "undo": 381, "redo": 384,
    "installKeyboardShortcuts": 389, "uninstallKeyboardShortcuts": 392, "updateEffectList": 416,
}


def test_the_module_calls_only_what_the_segment_editor_widget_declares():
    called = {node.attr for widget in widgetClasses() for node in ast.walk(widget) if isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Attribute) and node.value.attr == "segmentEditorWidget"}
    assert "updateEffectList" in called and "installKeyboardShortcuts" in called
    assert sorted(called - set(SEGMENT_EDITOR_WIDGET_API)) == []


def test_the_library_calls_on_the_embedded_editor_only_what_the_widget_declares():
    """SegmentEditing's shared history and showInputsInEditor use the model's methods: each is a slot of the widget."""
    modelMethods = {name for name in vars(EmbeddedEditor) if not name.startswith("_") and name != "paint"}
    assert sorted(modelMethods - set(SEGMENT_EDITOR_WIDGET_API)) == []


def test_the_logic_keeps_one_parameter_node_wrapper_and_the_widget_connects_it_once():
    """Slicer 5.10's connectGui adds an observer that disconnectGui never removes (parameterNodeWrapper/wrapper.py,
    fixed in 5.12): one wrapper per parameter node, connected once, never disconnected by exit()."""
    getParameterNode = _method("AISegmentationLogic", "getParameterNode")
    assert any(isinstance(node, ast.Return) and isinstance(node.value, ast.Attribute)
               and node.value.attr == "_parameterNodeWrapper" for node in ast.walk(getParameterNode))
    assert "disconnectGui" not in _calls(_method("AISegmentationWidget", "exit"))
    setParameterNode = _method("AISegmentationWidget", "setParameterNode")
    first = setParameterNode.body[0]
    assert isinstance(first, ast.If) and isinstance(first.body[0], ast.Return)
    assert any(isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.Is)
               and isinstance(node.comparators[0], ast.Attribute) and node.comparators[0].attr == "_parameterNode"
               for node in ast.walk(first.test))  # "... is self._parameterNode" (no ast.unparse: see CPython 3.11)
