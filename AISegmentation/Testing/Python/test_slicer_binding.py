"""Desktop Slicer's rules for the panel, checked against AISegmentation.py and the .ui (Slicer cannot run here).

Each rule cites the Slicer 5.10 source it comes from (github Slicer/Slicer, tag v5.10.0). A panel that breaks one of
them raises while its parameter node is bound (every time the module is opened) or misbehaves in every module.
"""

import ast
import enum
import pathlib

import pytest

import ModuleSource

GUI_CONNECTORS = "Base/Python/slicer/parameterNodeWrapper/guiConnectors.py"

# widget class -> (accepted field types, guiConnectors.py line of the connector's canRepresent). The connector is
# chosen by type(widget) ==, so the .ui class must be exactly one of these (no connector: RuntimeError, line 145).
CONNECTORS = {
    "QCheckBox": ({bool}, 165), "ctkCheckBox": ({bool}, 165),
    "QPushButton": ({bool}, 198), "ctkCheckablePushButton": ({bool}, 234),
    "QSlider": ({int}, 279), "QSpinBox": ({int}, 279),
    **{name: ({float, int}, 343) for name in ("QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget",
                                               "ctkDoubleSlider", "ctkDoubleSpinBox", "qMRMLSpinBox")},
    "QComboBox": ({int, float, str, bool, enum.Enum}, 421), "ctkComboBox": ({int, float, str, bool, enum.Enum}, 421),
    "QLineEdit": ({str}, 518), "QLabel": ({str}, 554), "QTextEdit": ({str}, 587),
    "ctkPathLineEdit": ({pathlib.Path}, 676), "ctkDirectoryButton": ({pathlib.Path}, 712),
    "qMRMLNodeComboBox": ({"node"}, 748),
}
# Sliders raise on an unbounded number (lines 306-307 for QSlider, 379-380 for ctkSliderWidget / qMRMLSliderWidget).
SLIDERS = {"QSlider", "ctkSliderWidget", "qMRMLSliderWidget"}
# Spin boxes accept an unbounded number but then get -2^31..2^31-1 (lines 312-321) or -inf..inf (lines 385-393),
# overriding the .ui's range: ours must carry the .ui's range.
SPIN_BOXES = {"QSpinBox", "QDoubleSpinBox", "ctkDoubleSpinBox", "qMRMLSpinBox"}
COMBO_BOXES = {"QComboBox", "ctkComboBox"}


def _accepts(accepted, fieldType):
    if "node" in accepted:
        return isinstance(fieldType, type) and fieldType.__name__.startswith("vtkMRML")
    if enum.Enum in accepted and isinstance(fieldType, type) and issubclass(fieldType, enum.Enum):
        return True
    return fieldType in accepted


def _bounds(field):
    withinRange = field.find("WithinRange")
    if withinRange is not None:
        return withinRange.args
    minimum, maximum = field.find("Minimum"), field.find("Maximum")
    if minimum is not None and maximum is not None:
        return minimum.args[0], maximum.args[0]
    return None


def bindingProblems(widgets, fields):
    """Why connectGui would raise, or would override the .ui, for each bound widget (empty list: none)."""
    problems = []
    for widget in widgets:
        field = fields.get(widget.parameter)
        where = f"{widget.name} ({widget.className}) -> {widget.parameter}"
        if field is None:
            problems.append(f"{where}: no such parameter node field")
            continue
        if widget.className not in CONNECTORS:
            problems.append(f"{where}: no GUI connector for this widget class ({GUI_CONNECTORS}:145)")
            continue
        accepted, line = CONNECTORS[widget.className]
        if not _accepts(accepted, field.type):
            problems.append(f"{where}: {field.type} is not accepted by this widget ({GUI_CONNECTORS}:{line})")
            continue
        if widget.className in COMBO_BOXES and field.type in (int, float, str, bool):
            choice = field.find("Choice")
            if choice is None:
                problems.append(f"{where}: a combo box bound to {field.type.__name__} needs Annotated[..., Choice(...)]"
                                f" ({GUI_CONNECTORS}:429-431)")
            elif field.hasDefault and field.default not in choice.args[0]:
                problems.append(f"{where}: default {field.default!r} is not one of the choices {choice.args[0]} "
                                f"(validators.py Choice.validate)")
        if widget.className in SLIDERS | SPIN_BOXES:
            bounds = _bounds(field)
            if bounds is None:
                problems.append(f"{where}: unbounded number: add WithinRange (or Minimum and Maximum) "
                                f"({GUI_CONNECTORS}:306-321, 379-393)")
                continue
            uiRange = (widget.properties["minimum"], widget.properties["maximum"])
            if None not in uiRange and tuple(float(b) for b in bounds) != uiRange:
                problems.append(f"{where}: range {bounds} differs from the .ui's {uiRange}; the connector's wins")
            if field.hasDefault and not bounds[0] <= field.default <= bounds[1]:
                problems.append(f"{where}: default {field.default} outside {bounds}")
        if widget.className in ("ctkPathLineEdit", "ctkDirectoryButton") and field.hasDefault \
                and str(field.default) == ".":
            problems.append(f"{where}: the connector writes str(path) (line 705): the empty path shows \".\" "
                            f"(the current folder), not an empty field")
        if widget.className == "qMRMLNodeComboBox":
            nodeTypes = widget.properties["nodeTypes"] or []
            if field.type.__name__ not in nodeTypes:
                problems.append(f"{where}: field type {field.type.__name__} is not among the selector's nodeTypes "
                                f"{nodeTypes}")
    return problems


def test_every_bound_widget_satisfies_slicers_gui_connector_rules():
    widgets, fields = ModuleSource.boundWidgets(), ModuleSource.parameterNodeFields()
    assert widgets, "the .ui binds no widget"
    assert bindingProblems(widgets, fields) == []


def test_the_rules_catch_the_binding_errors_slicer_raises_on():
    """The checker itself: a plain str on a combo box, an unbounded slider, an unbounded spin box, a wrong class."""
    Field, Widget = ModuleSource.Field, ModuleSource.BoundWidget
    noRange = {"minimum": None, "maximum": None, "nodeTypes": None}
    fields = {"mode": Field("mode", str, [], "a", True), "factor": Field("factor", float, [], 0.0, True),
              "size": Field("size", int, [], 5, True), "text": Field("text", str, [], "", True)}
    widgets = [Widget("modeComboBox", "QComboBox", "mode", noRange),
               Widget("factorSlider", "ctkSliderWidget", "factor", noRange),
               Widget("sizeSpinBox", "QSpinBox", "size", {"minimum": 1.0, "maximum": 10.0, "nodeTypes": None}),
               Widget("textEdit", "QPlainTextEdit", "text", noRange)]
    problems = bindingProblems(widgets, fields)
    assert [problem.split(":")[0] for problem in problems] == [
        "modeComboBox (QComboBox) -> mode", "factorSlider (ctkSliderWidget) -> factor",
        "sizeSpinBox (QSpinBox) -> size", "textEdit (QPlainTextEdit) -> text"]
    folder = bindingProblems([Widget("folderLineEdit", "ctkPathLineEdit", "folder", noRange)],
                             {"folder": Field("folder", pathlib.Path, [], pathlib.Path(), True)})
    assert len(folder) == 1 and '"."' in folder[0]
    choice = ModuleSource.ANNOTATIONS["Choice"](["a", "b"])
    assert bindingProblems(widgets[:1], {"mode": Field("mode", str, [choice], "a", True)}) == []
    assert "not one of the choices" in bindingProblems(widgets[:1], {"mode": Field("mode", str, [choice], "c", True)})[0]


def test_threshold_defaults_fit_the_range_widget_before_a_volume_is_chosen():
    """ctkRangeWidget clamps setValues to its range (0..99 by default): the .ui's range must hold the defaults, and
    the widget must update the range when the source volume changes."""
    fields = ModuleSource.parameterNodeFields()
    rangeWidget = next(w for w in ModuleSource.uiTree().iter("widget") if w.get("name") == "thresholdRangeWidget")
    low, high = (ModuleSource._property(rangeWidget, name) for name in ("minimum", "maximum"))
    assert low is not None and high is not None, "thresholdRangeWidget keeps ctkRangeWidget's default 0..99 range"
    for name in ("thresholdMinimum", "thresholdMaximum"):
        assert low <= fields[name].default <= high
    widget = ModuleSource.moduleClass("AISegmentationWidget")
    handler = next(n for n in widget.body if isinstance(n, ast.FunctionDef) and n.name == "_onParameterNodeModified")
    assert "section.onParameterNodeModified" in ast.unparse(handler)  # every section follows the panel state
    classic = next(n for n in ModuleSource.widgetClasses() if n.name == "ClassicSection")
    hook = next(n for n in classic.body if isinstance(n, ast.FunctionDef) and n.name == "onParameterNodeModified")
    assert "showThresholdRange" in ast.unparse(hook)
    setParameterNode = next(n for n in widget.body if isinstance(n, ast.FunctionDef) and n.name == "setParameterNode")
    assert "_onParameterNodeModified" in ast.unparse(setParameterNode)


def _methods(classNode):
    return {node.name: node for node in classNode.body if isinstance(node, ast.FunctionDef)}


def _callsIn(function):
    return {node.func.attr for node in ast.walk(function)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}


# Keys that Slicer 5.10 gives a meaning without a modifier while the pointer is in a view or the Segment Editor is
# shown: slice views f/b (next/previous slice), g, t, v, r (Libs/MRML/DisplayableManager/
# vtkMRMLSliceIntersectionWidget.cxx:168-196), 3D views r (vtkMRMLCameraWidget.cxx:111), Markups s (snap to slice,
# Modules/Loadable/Markups/VTKWidgets/vtkSlicerMarkupsWidget.cxx:69), segment editor 0-9, q, w, z, y, i, space,
# escape, comma, period, slash, asterisk, < and > (Modules/Loadable/Segmentations/Widgets/
# qMRMLSegmentEditorWidget.cxx:2312-2375); SlicerNNInteractive takes p, b, l, s and n on the main window.
RESERVED_PLAIN_KEYS = set("fbgtvrsqwzyi0123456789plns,./*<> ") | {"escape", "space"}


def test_prompt_shortcuts_exist_only_while_the_module_is_entered_and_take_no_reserved_key():
    tree = ModuleSource.moduleTree()
    namespace = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id in ("INTERACTIVE_SHORTCUTS", "NEGATIVE_PROMPT_SHORTCUT"):
            exec(compile(ast.Module([node], []), "AISegmentation.py", "exec"), namespace)  # noqa: S102
    keys = [*namespace["INTERACTIVE_SHORTCUTS"].values(), namespace["NEGATIVE_PROMPT_SHORTCUT"]]
    assert len(set(keys)) == len(keys)
    for key in keys:
        assert "+" in key or key.lower() not in RESERVED_PLAIN_KEYS, f"{key} is taken by Slicer"

    methods = _methods(ModuleSource.moduleClass("AISegmentationWidget", tree))
    creators = {name for name, function in methods.items() if "QShortcut" in _callsIn(function)}
    assert creators == {"_installShortcuts"}, "QShortcut objects must be created only by _installShortcuts"
    callers = {name for name, function in methods.items() if "_installShortcuts" in _callsIn(function)}
    assert callers == {"enter"}, "install the shortcuts in enter() (as the Segment Editor does), not in setup()"
    for name in ("exit", "cleanup"):
        assert "_removeShortcuts" in _callsIn(methods[name]), f"{name}() must remove the shortcuts"
    assert "installKeyboardShortcuts" in _callsIn(methods["enter"])
    assert "uninstallKeyboardShortcuts" in _callsIn(methods["exit"])


def test_nothing_follows_try_with_error_display_in_the_same_block():
    """slicer.util.tryWithErrorDisplay shows the error and re-raises it (Base/Python/slicer/util.py:3368-3410), so a
    statement after the with block never runs after a failure: put it in a finally."""
    offenders = []
    for classNode in [node for tree in ModuleSource.panelTrees().values() for node in ast.walk(tree)]:
        if not isinstance(classNode, ast.ClassDef):
            continue
        for function in _methods(classNode).values():
            for node in ast.walk(function):
                for blockName in ("body", "orelse"):
                    block = getattr(node, blockName, None)
                    if not isinstance(block, list):
                        continue
                    for index, statement in enumerate(block[:-1]):
                        if isinstance(statement, ast.With) and "tryWithErrorDisplay" in ast.unparse(statement.items[0]):
                            offenders.append(f"{classNode.name}.{function.name}: {ast.unparse(block[index + 1])}")
    assert offenders == []


def test_module_logic_initializes_the_core_logic_once():
    """ScriptedLoadableModuleLogic.__init__ already calls super().__init__() (Base/Python/slicer/
    ScriptedLoadableModule.py:297-298), which runs AISegmentationCoreLogic.__init__ (next in the MRO)."""
    logicClass = ModuleSource.moduleClass("AISegmentationLogic")
    assert [ast.unparse(base) for base in logicClass.bases] == ["ScriptedLoadableModuleLogic",
                                                                 "AISegmentationCoreLogic"]
    init = _methods(logicClass)["__init__"]
    source = ast.unparse(init)
    assert "AISegmentationCoreLogic.__init__" not in source
    assert source.count("__init__(") == 2  # the def itself and ScriptedLoadableModuleLogic.__init__(self)


def test_every_ui_connection_names_existing_widgets_and_every_mrml_widget_gets_the_scene():
    tree = ModuleSource.uiTree()
    names = ModuleSource.uiWidgetNames()
    receivers = set()
    for connection in tree.iter("connection"):
        sender, receiver = connection.findtext("sender"), connection.findtext("receiver")
        assert {sender, receiver} <= names, (sender, receiver)
        if connection.findtext("slot") == "setMRMLScene(vtkMRMLScene*)":
            receivers.add(receiver)
    mrmlWidgets = {w.get("name") for w in tree.iter("widget") if w.get("class").startswith("qMRML")} - {
        tree.getroot().find("widget").get("name")}
    assert mrmlWidgets <= receivers, sorted(mrmlWidgets - receivers)


@pytest.mark.parametrize("removed", ["maskModeComboBox", "overwriteModeComboBox", "segmentSelectorWidget"])
def test_masking_and_segment_selection_are_the_embedded_segment_editors(removed):
    """One Masking section and one segment list: those of Slicer's segment editor embedded in the panel."""
    assert removed not in ModuleSource.uiWidgetNames()
    assert "segmentEditorPlaceholder" in ModuleSource.uiWidgetNames()
    setup = _methods(ModuleSource.moduleClass("AISegmentationWidget"))["_setupSegmentEditor"]
    source = ast.unparse(setup)
    assert "qMRMLSegmentEditorWidget()" in source
    assert "setMRMLSegmentEditorNode(self.logic.segmentEditor.editorNode)" in source
