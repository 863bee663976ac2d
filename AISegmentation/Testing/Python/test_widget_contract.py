"""The contract between the Qt widget (and the in-Slicer self-test) and the Logic: every Logic method they call
exists and accepts the arguments passed, and they touch no private part of the Logic."""

import ast
import inspect

import ModuleSource
from AISegmentationLib.Logic import AISegmentationLogic

# What the module logic adds on top of AISegmentationLib's Logic (ScriptedLoadableModuleLogic, Slicer 5.10:
# Base/Python/slicer/ScriptedLoadableModule.py:296-330; AISegmentationLogic.getParameterNode in AISegmentation.py).
SLICER_LOGIC_METHODS = {"getParameterNode", "getAllParameterNodes", "createParameterNode"}
_MISSING = object()


def _placeholderCall(call):
    """Positional and keyword placeholders of a call, or None where */** expansions hide its shape."""
    if any(isinstance(a, ast.Starred) for a in call.args):
        return None
    return [object()] * len(call.args), {k.arg: object() for k in call.keywords if k.arg is not None}


def contractProblems(classNode, receiver):
    problems = []
    for name, call in ModuleSource.methodCalls(classNode, receiver):
        if name in SLICER_LOGIC_METHODS:
            continue
        member = inspect.getattr_static(AISegmentationLogic, name, _MISSING)
        if member is _MISSING:
            problems.append(f"{receiver}.{name}: no such Logic method")
            continue
        function = getattr(AISegmentationLogic, name)
        if not callable(function):
            problems.append(f"{receiver}.{name}: not callable")
            continue
        shape = _placeholderCall(call)
        hasKeywordExpansion = any(k.arg is None for k in call.keywords)
        signature = inspect.signature(function)
        if not isinstance(member, (staticmethod, classmethod)) and "self" in signature.parameters:
            signature = signature.replace(parameters=list(signature.parameters.values())[1:])
        if shape is None:
            unknown = [k.arg for k in call.keywords if k.arg is not None and k.arg not in signature.parameters]
            if unknown and not any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
                problems.append(f"{receiver}.{name}: unknown keywords {unknown}")
            continue
        args, kwargs = shape
        try:
            (signature.bind_partial if hasKeywordExpansion else signature.bind)(*args, **kwargs)
        except TypeError as error:
            problems.append(f"{receiver}.{name}({ast.unparse(call)[len(receiver) + len(name) + 2:-1]}): {error}")
    for name in ModuleSource.attributeUses(classNode, receiver):
        if name.startswith("_"):
            problems.append(f"{receiver}.{name}: private part of the Logic")
        elif inspect.getattr_static(AISegmentationLogic, name, _MISSING) is _MISSING and \
                name not in SLICER_LOGIC_METHODS:
            problems.append(f"{receiver}.{name}: the Logic has no such attribute")
    for node in ast.walk(classNode):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "getattr" and \
                ast.unparse(node.args[0]) == receiver:
            problems.append(f"getattr({receiver}, ...): read the Logic through its public API")
    return problems


SECTIONS = {"ClassicSection", "AiSection", "InteractiveSection", "TrainSection", "ComparisonSection", "DicomSection"}


def _members(classNode):
    """Methods, properties and attributes assigned on self in a class."""
    return {n.name for n in classNode.body if isinstance(n, ast.FunctionDef)} | {
        node.attr for node in ast.walk(classNode) if isinstance(node, ast.Attribute) and
        isinstance(node.ctx, ast.Store) and ast.unparse(node.value) == "self"}


def test_every_logic_call_of_the_widget_and_its_sections_exists_and_accepts_its_arguments():
    classes = ModuleSource.widgetClasses()
    assert SECTIONS <= {node.name for node in classes}
    calls = [call for node in classes for call in ModuleSource.methodCalls(node, "self.logic")]
    assert len(calls) > 20
    assert [problem for node in classes for problem in contractProblems(node, "self.logic")] == []


def test_the_sections_use_only_what_the_module_widget_offers():
    """A section reaches the rest of the panel through the module widget's public members (its ui, Logic, parameter
    node, inputs, the job poller, the other sections)."""
    classes = ModuleSource.widgetClasses()
    widgetMembers = _members(classes[0])
    used = {name for node in classes[1:] for name in ModuleSource.attributeUses(node, "self.widget")}
    assert {"parameterNode", "inputs", "jobs"} <= used
    assert sorted(used - widgetMembers) == []
    assert not [name for name in used if name.startswith("_")]


def test_the_self_test_uses_the_panel_and_the_logic_as_they_are():
    test = ModuleSource.moduleClass("AISegmentationTest")
    assert contractProblems(test, "logic") == []
    widgetMembers = _members(ModuleSource.moduleClass("AISegmentationWidget"))
    used = ModuleSource.attributeUses(test, "widget")
    assert used and used <= widgetMembers, sorted(used - widgetMembers)
    uiNames = ModuleSource.attributeUses(test, "widget.ui")
    assert uiNames and uiNames <= ModuleSource.uiWidgetNames(), sorted(uiNames - ModuleSource.uiWidgetNames())
    fields = ModuleSource.parameterNodeFields()
    parameters = ModuleSource.attributeUses(test, "parameters")
    assert parameters and parameters <= set(fields), sorted(parameters - set(fields))


def test_the_checker_catches_a_missing_method_a_wrong_argument_and_a_private_read():
    source = (
        "class W:\n"
        "    def f(self):\n"
        "        self.logic.threshold(1, 2, 3, 4, 5)\n"
        "        self.logic.threshold(1, 2, 3, 4)\n"
        "        self.logic.noSuchMethod()\n"
        "        self.logic.undo(1, bogus=2)\n"
        "        getattr(self.logic, '_interactiveSession', None)\n"
        "        self.logic._segmentEditor\n")
    problems = contractProblems(ast.parse(source).body[0], "self.logic")
    assert len(problems) == 6, problems  # noSuchMethod: neither a method nor an attribute
    assert any("noSuchMethod" in p for p in problems)
    assert any("threshold(1, 2, 3, 4)" in p for p in problems)
    assert any("bogus" in p for p in problems)
    assert any("private" in p for p in problems)
    assert any(p.startswith("getattr") for p in problems)


def test_the_widget_reads_nothing_private_and_names_the_interactive_server_through_the_logic(logic):
    """useInteractiveServer keeps the session (and its prompts) when the same server and key are set again."""
    first = logic.useInteractiveServer("http://127.0.0.1:1527")
    session = logic.interactiveSession
    assert logic.useInteractiveServer("http://127.0.0.1:1527/") == first
    assert logic.interactiveSession is session
    logic.useInteractiveServer("http://127.0.0.1:1527", apiKey="secret")
    assert logic.interactiveSession is not session


# slicer.util as Slicer 5.10 defines it (Base/Python/slicer/util.py at tag v5.10.0: line, parameters; "**" = takes
# **kwargs). Only what the module uses; a name the module starts using must be read there and added here.
SLICER_5_10_UTIL = {
    "mainWindow": (236, []), "loadUI": (342, ["path"]), "childWidgetVariables": (376, ["widget"]),
    "selectModule": (1242, ["module"]), "getModuleWidget": (1313, ["module"]),
    "arrayFromVolume": (1764, ["volumeNode"]),
    "infoDisplay": (3042, ["text", "windowTitle", "parent", "standardButtons", "**"]),
    "warningDisplay": (3055, ["text", "windowTitle", "parent", "standardButtons", "**"]),
    "confirmOkCancelDisplay": (3081, ["text", "windowTitle", "parent", "**"]),
    "confirmYesNoDisplay": (3096, ["text", "windowTitle", "parent", "**"]),
    "tryWithErrorDisplay": (3368, ["message", "show", "waitCursor"]),
}


def _isSlicerUtil(node):
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "util"
            and isinstance(node.value.value, ast.Name) and node.value.value.id == "slicer")


def _slicerUtilNames(tree):
    """(name, reference) for every slicer.util.<name> in the code (called or passed on)."""
    return [(node.attr, node) for node in ast.walk(tree) if _isSlicerUtil(node)]


def slicerUtilProblems(tree):
    problems = [f"slicer.util.{name} (line {node.lineno}): not among the checked Slicer 5.10 functions"
                for name, node in _slicerUtilNames(tree) if name not in SLICER_5_10_UTIL]
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _isSlicerUtil(node.func)]
    for call in calls:
        name = call.func.attr
        if name not in SLICER_5_10_UTIL:
            continue
        parameters = SLICER_5_10_UTIL[name][1]
        named = [p for p in parameters if p != "**"]
        if len(call.args) > len(named):
            problems.append(f"slicer.util.{name} (line {call.lineno}): {len(call.args)} positional arguments, "
                            f"it takes {len(named)}")
        unknown = [k.arg for k in call.keywords if k.arg is not None and k.arg not in named]
        if unknown and "**" not in parameters:
            problems.append(f"slicer.util.{name} (line {call.lineno}): no parameter {', '.join(unknown)}")
    return problems


def test_the_module_and_its_sections_call_slicer_util_as_slicer_5_10_defines_it():
    trees = ModuleSource.panelTrees()
    assert len(trees) > 5
    assert sorted({name for tree in trees.values() for name, _ in _slicerUtilNames(tree)}) == sorted(SLICER_5_10_UTIL)
    assert [problem for tree in trees.values() for problem in slicerUtilProblems(tree)] == []
    wrong = ast.parse("slicer.util.confirmYesNoDialog('x')\nslicer.util.loadUI('a', 'b')\n"
                      "slicer.util.tryWithErrorDisplay(msg='x')\n")
    assert slicerUtilProblems(wrong) == [
        "slicer.util.confirmYesNoDialog (line 1): not among the checked Slicer 5.10 functions",
        "slicer.util.loadUI (line 2): 2 positional arguments, it takes 1",
        "slicer.util.tryWithErrorDisplay (line 3): no parameter msg"]


def test_the_self_test_presses_every_classic_tool_and_undo_redo():
    """The tools that reach vtkITK (automatic threshold, level tracing, islands) broke in desktop Slicer while no
    self-test pressed them: the in-Slicer self-test clicks every button of the Classic section, Undo and Redo."""
    test = ModuleSource.moduleClass("AISegmentationTest")
    clicked = {node.func.value.attr for node in ast.walk(test) if isinstance(node, ast.Call)
               and isinstance(node.func, ast.Attribute) and node.func.attr == "click"
               and isinstance(node.func.value, ast.Attribute)}
    required = {"thresholdApplyButton", "autoThresholdButton", "levelTracingApplyButton", "growInitializeButton",
                "growApplyButton", "keepLargestIslandButton", "removeSmallIslandsButton", "undoButton", "redoButton",
                "compareButton"}
    assert sorted(required - clicked) == []
