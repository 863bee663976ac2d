"""The module against desktop Slicer's `slicer` namespace (DesktopSlicer.py: the rules and their Slicer source lines).

1. AISegmentation.py and its whole import chain run when `slicer` holds the startup kits only (a fresh interpreter).
2. Every `slicer.<class>` the product names is in the namespace of the moment it is used: at import the startup
   kits, inside functions also the loadable modules' wrappers, vtkITK / vtkTeem classes never.
"""

import ast
import os
import subprocess
import sys
import textwrap

import pytest

import DesktopSlicer

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
MODULE_DIR = os.path.dirname(os.path.dirname(TESTS_DIR))
MODULE_FILE = os.path.join(MODULE_DIR, "AISegmentation.py")
LIB_DIR = os.path.join(MODULE_DIR, "AISegmentationLib")

# What AISegmentation.py imports from Slicer's Qt side, which PyPI slicer-core does not have (it has no Qt): plain
# stand-ins with the names and call shapes of Base/Python/slicer/i18n.py, parameterNodeWrapper/ and
# ScriptedLoadableModule.py, so that the rest of the module file (and everything it imports) runs for real.
_STARTUP_SCRIPT = textwrap.dedent("""
    import sys, types, runpy
    sys.path[:0] = [{tests!r}, {module!r}, {repository!r}]
    import DesktopSlicer
    removed = DesktopSlicer.apply(DesktopSlicer.STARTUP)
    import slicer
    assert "vtkMRMLSegmentEditorNode" in removed and not hasattr(slicer, "vtkSlicerSegmentEditorLogic")
    assert not hasattr(slicer, "vtkITKIslandMath") and hasattr(slicer, "vtkMRMLSegmentationNode")

    def stub(name, **names):
        module = types.ModuleType(name)
        module.__dict__.update(names)
        sys.modules[name] = module
        setattr(slicer, name.split(".")[-1], module)

    class Annotation:
        def __init__(self, *args):
            self.args = args

    stub("slicer.i18n", tr=lambda text: text, translate=lambda context, text: text)
    stub("slicer.parameterNodeWrapper", Choice=Annotation, WithinRange=Annotation, parameterNodeWrapper=lambda c: c)
    stub("slicer.ScriptedLoadableModule", **{{name: type(name, (), {{"__init__": lambda self, *a: None}})
        for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest",
                     "ScriptedLoadableModuleWidget")}})
    runpy.run_path({file!r}, run_name="AISegmentation")
    print("imported at startup")

    # After instantiation (the widget's setup creates the Logic): the tools that use vtkITK and the editor logic.
    DesktopSlicer.apply(DesktopSlicer.INSTANTIATED)
    import numpy as np
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import createHeadlessRuntime
    from DevTools.SyntheticImages import makeVolume
    logic = AISegmentationLogic(createHeadlessRuntime())
    volume = makeVolume(logic, np.pad(np.full((6, 6, 6), 100, np.int16), 5))
    segmentation = logic.createSegmentation(volume, "s")
    segmentId = logic.addSegment(segmentation, "cube")
    low, high = logic.autoThresholdRange(volume, "Otsu")
    logic.threshold(volume, segmentation, segmentId, low, high)
    logic.keepLargestIsland(volume, segmentation, segmentId)
    print("tools ran", int(logic.segmentArray(segmentation, segmentId, volume).sum()))
""")


def test_the_module_file_and_its_import_chain_load_when_slicer_holds_the_startup_kits_only():
    script = _STARTUP_SCRIPT.format(tests=TESTS_DIR, module=MODULE_DIR, repository=os.path.dirname(MODULE_DIR),
                                    file=MODULE_FILE)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported at startup" in result.stdout
    assert "tools ran 216" in result.stdout, result.stdout + result.stderr[-2000:]


def _productFiles():
    yield MODULE_FILE
    for folder, _dirs, files in [*os.walk(os.path.join(MODULE_DIR, "AISegmentationWidgets")), *os.walk(LIB_DIR)]:
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(folder, name)


class _SlicerNames(ast.NodeVisitor):
    """(name, line, moment) of every slicer.<name>, getattr(slicer, "<name>") and `from slicer import <name>`:
    'startup' when it runs at import (module level, class bodies, default values, decorators), else 'instantiated'."""

    def __init__(self):
        self.found = []
        self._depth = 0

    def _add(self, name, node):
        self.found.append((name, node.lineno, DesktopSlicer.INSTANTIATED if self._depth else DesktopSlicer.STARTUP))

    def visit_FunctionDef(self, node):
        for default in node.args.defaults + node.args.kw_defaults:
            if default is not None:
                self.visit(default)
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._depth += 1
        for statement in node.body:
            self.visit(statement)
        self._depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self._depth += 1
        self.visit(node.body)
        self._depth -= 1

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id == "slicer":
            self._add(node.attr, node)
        self.generic_visit(node)

    def visit_Call(self, node):
        if (isinstance(node.func, ast.Name) and node.func.id == "getattr" and len(node.args) >= 2
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "slicer"
                and isinstance(node.args[1], ast.Constant)):
            self._add(node.args[1].value, node)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if node.module == "slicer":
            for alias in node.names:
                self._add(alias.name, node)


def slicerNamesUsed(path):
    with open(path, encoding="utf-8") as file:
        visitor = _SlicerNames()
        visitor.visit(ast.parse(file.read(), path))
    return visitor.found


def namespaceViolations(paths):
    """'file:line slicer.X (moment): why' for every Slicer class used where desktop Slicer does not have it."""
    everything = {name: DesktopSlicer.libraryOf(value) for name, value in DesktopSlicer._allSlicerClasses().items()}
    problems = []
    for path in paths:
        for name, line, moment in slicerNamesUsed(path):
            library = everything.get(name) or next(
                (own for own in DesktopSlicer.OWN_MODULE_LIBRARIES if name.startswith(own)), None)  # e.g. vtkITKGrowCut
            if library is None:
                continue  # not a class: util, modules, mrmlScene, app... (their use is checked elsewhere)
            where = f"{os.path.relpath(path, MODULE_DIR)}:{line} slicer.{name} ({moment}, from {library})"
            if library in DesktopSlicer.OWN_MODULE_LIBRARIES:
                problems.append(f"{where}: never in desktop Slicer's slicer namespace; use Runtime.vtkITK()")
            elif not DesktopSlicer.allowedAt(library, moment):
                problems.append(f"{where}: not in desktop Slicer's slicer namespace at that moment")
    return problems


def test_every_slicer_class_the_product_names_exists_in_desktop_slicer_when_it_is_used():
    assert namespaceViolations(list(_productFiles())) == []


def test_the_rule_catches_an_import_time_module_class_and_vtkitk(tmp_path):
    bad = tmp_path / "Bad.py"
    bad.write_text(textwrap.dedent("""
        import slicer
        from slicer import vtkMRMLSegmentationNode, vtkSlicerSegmentEditorLogic
        MODES = {"set": slicer.vtkSlicerSegmentEditorLogic.ModificationModeSet}
        NODE = slicer.vtkMRMLSegmentationNode.EditAllowedEverywhere

        def later(editor=slicer.vtkMRMLSegmentEditorNode.OverwriteNone):
            slicer.vtkSlicerSegmentEditorLogic()
            return getattr(slicer, "vtkITKGrowCut", None) or slicer.vtkITKIslandMath()
    """))
    problems = namespaceViolations([str(bad)])
    text = "\n".join(problems)
    assert "slicer.vtkSlicerSegmentEditorLogic (startup" in text  # the import and the module-level constant
    assert sum("vtkSlicerSegmentEditorLogic (startup" in p for p in problems) == 2
    assert "slicer.vtkMRMLSegmentEditorNode (startup" in text  # a default value runs at import
    assert "slicer.vtkITKGrowCut" in text and "slicer.vtkITKIslandMath" in text
    assert "vtkMRMLSegmentationNode" not in text  # MRML Core: a startup kit
    assert "vtkSlicerSegmentEditorLogic (instantiated" not in text  # inside a function: fine


@pytest.mark.parametrize("moment, present, absent", [
    (DesktopSlicer.STARTUP, ["vtkMRMLSegmentationNode", "vtkOrientedImageData", "vtkSlicerApplicationLogic",
                             "vtkMRMLMarkupsFiducialNode", "vtkAddonMathUtilities"],
     ["vtkMRMLSegmentEditorNode", "vtkSlicerSegmentEditorLogic", "vtkSlicerVolumesLogic", "vtkITKIslandMath"]),
    (DesktopSlicer.INSTANTIATED, ["vtkMRMLSegmentEditorNode", "vtkSlicerSegmentEditorLogic", "vtkSlicerVolumesLogic",
                                  "vtkImageGrowCutSegment", "vtkMRMLSegmentationNode"],
     ["vtkITKIslandMath", "vtkITKImageThresholdCalculator", "vtkTeemNRRDReader", "vtkHTTPHandler"]),
])
def test_the_model_holds_what_slicer_holds_at_each_moment(moment, present, absent):
    names = DesktopSlicer.classesAt(moment)
    assert [name for name in present if name not in names] == []
    assert [name for name in absent if name in names] == []


def test_every_test_runs_on_the_namespace_after_instantiation_with_vtkitk_as_its_own_module():
    import slicer
    import vtkITK  # as Slicer's effects import it

    assert not hasattr(slicer, "vtkITKIslandMath") and hasattr(vtkITK, "vtkITKIslandMath")
    assert hasattr(slicer, "vtkSlicerSegmentEditorLogic")
