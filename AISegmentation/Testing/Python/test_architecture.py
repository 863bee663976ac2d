"""House rules that can be checked mechanically (DESIGN.md "Layers")."""

import ast
import os
import re
import sys

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(MODULE_DIR, "AISegmentationLib")
FORBIDDEN = {"qt", "ctk", "slicer.app", "slicer.ScriptedLoadableModule", "slicer.parameterNodeWrapper", "slicer.i18n"}


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_library_imports_no_qt_or_application_module():
    offenders = []
    for name in sorted(os.path.relpath(os.path.join(r, f), LIB_DIR) for r, _, fs in os.walk(LIB_DIR) for f in fs):
        if name.endswith(".py"):
            path = os.path.join(LIB_DIR, name)
            offenders += [f"{name}: {module}" for module in _imports(path) if module in FORBIDDEN]
            if re.search(r"\bslicer\.app\b", open(path, encoding="utf-8").read().replace("hasattr(slicer, \"app\")", "")):
                offenders.append(f"{name}: uses slicer.app")
    assert offenders == []


def _cmakeList(cmake, variable):
    match = re.search(rf"set\({variable}\n(.*?)\n\s*\)", re.sub(r"#.*", "", cmake), re.S)
    return set(match.group(1).split())


def test_cmake_lists_every_python_file_and_resource():
    """Every .py of the Lib is a script; every other file shipped with the module (Resources/, and files beside the
    code such as the backends' requirements) is a resource, installed at its relative path."""
    cmake = open(os.path.join(MODULE_DIR, "CMakeLists.txt"), encoding="utf-8").read()
    scripts, resources = _cmakeList(cmake, "MODULE_PYTHON_SCRIPTS"), _cmakeList(cmake, "MODULE_PYTHON_RESOURCES")
    for folder in (LIB_DIR, os.path.join(MODULE_DIR, "Resources")):
        for root, folders, files in os.walk(folder):
            folders[:] = [name for name in folders if name != "__pycache__"]
            for name in files:
                relative = os.path.relpath(os.path.join(root, name), MODULE_DIR).replace(os.sep, "/")
                expected = scripts if name.endswith(".py") else resources
                assert relative in expected, f"{relative} missing from CMakeLists.txt"
    for relative in scripts | resources:
        assert relative.startswith("${") or os.path.isfile(os.path.join(MODULE_DIR, relative)), relative


def _stringLiterals(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_the_widget_and_the_cli_name_no_backend():
    """The panel's AI section and the CLI's segment subcommands are generated from the backends' declarations."""
    from AISegmentationLib.Backends import Registry

    names = [backend.name for backend in Registry.allBackends().values()]
    repository = os.path.dirname(MODULE_DIR)
    paths = [os.path.join(MODULE_DIR, "AISegmentation.py")] + [
        os.path.join(repository, "Scripts", name) for name in os.listdir(os.path.join(repository, "Scripts"))
        if name.startswith("AISegmentationCLI") and name.endswith(".py")]
    assert len(paths) >= 3
    for path in paths:
        text = open(path, encoding="utf-8").read()
        for literal in _stringLiterals(path):
            for name in names:  # as a key ("nnunet"); prose may cite a product (e.g. TotalSegmentator's example CT)
                assert not re.search(rf"\b{name}\b", literal), f"{os.path.basename(path)} names {name}: {literal!r}"
        assert not re.search(r"==\s*[\"'](nnunet|totalsegmentator)", text, re.I)
        for module in _imports(path):
            assert not any(f".Backends.{folder}" in module for folder in ("NnUNet", "TotalSegmentator")), module


def test_each_backend_is_one_folder_with_its_three_parts():
    """Parent side (the registered Backend subclass), child side (its childModule, which imports neither slicer nor
    AISegmentationLib) and its requirements file, all in Backends/<Name>/."""
    from AISegmentationLib.Backends import Registry
    from AISegmentationLib.Backends.Backend import Backend

    backendsDir = os.path.join(LIB_DIR, "Backends")
    folders = {name for name in os.listdir(backendsDir) if os.path.isdir(os.path.join(backendsDir, name)) and
               name != "__pycache__"}
    backends = Registry.allBackends().values()
    assert {os.path.basename(backend.folder) for backend in backends} == folders
    for backend in backends:
        assert isinstance(backend, Backend) and os.path.dirname(backend.folder) == backendsDir, backend.name
        files = set(os.listdir(backend.folder)) - {"__pycache__"}
        parent = os.path.basename(sys.modules[type(backend).__module__].__file__)
        assert files == {parent, backend.childModule, os.path.basename(backend.requirementsPath)}, files
        assert backend.options and backend.title and backend.environmentName
        child = [module.split(".")[0] for module in _imports(backend.childModulePath)]
        assert "slicer" not in child and "AISegmentationLib" not in child, child


def test_module_file_has_the_five_template_classes():
    tree = ast.parse(open(os.path.join(MODULE_DIR, "AISegmentation.py"), encoding="utf-8").read())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {"AISegmentation", "AISegmentationParameterNode", "AISegmentationWidget", "AISegmentationLogic",
            "AISegmentationTest"} <= classes


def test_widget_uses_only_widgets_that_the_ui_file_defines_and_binds_parameter_node_fields():
    import xml.etree.ElementTree as ElementTree

    source = open(os.path.join(MODULE_DIR, "AISegmentation.py"), encoding="utf-8").read()
    ui = ElementTree.parse(os.path.join(MODULE_DIR, "Resources", "UI", "AISegmentation.ui"))
    widgetNames = {w.get("name") for w in ui.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", source))
    assert used and used <= widgetNames, sorted(used - widgetNames)
    bound = {p.find("string").text for p in ui.iter("property") if p.get("name") == "SlicerParameterName"}
    tree = ast.parse(source)
    parameterClass = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AISegmentationParameterNode")
    fields = {n.target.id for n in parameterClass.body if isinstance(n, ast.AnnAssign)}
    assert bound <= fields, sorted(bound - fields)


def test_the_in_slicer_self_test_needs_nothing_outside_the_installed_module():
    """AISegmentationTest runs in an installed extension: no pytest, no pip install, no Scripts/ or Testing/ (not
    installed); the module's CMakeLists installs no test script."""
    tree = ast.parse(open(os.path.join(MODULE_DIR, "AISegmentation.py"), encoding="utf-8").read())
    testClass = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "AISegmentationTest")
    for node in ast.walk(testClass):  # docstrings may name what the code must not use
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    source = ast.unparse(testClass)
    for forbidden in ("pytest", "pip_install", "pip_ensure", "Scripts", "Testing", "TinyModels", "InteractiveServers"):
        assert forbidden not in source, forbidden
    imported = {module.split(".")[0] for node in ast.walk(testClass) for module in (
        [a.name for a in node.names] if isinstance(node, ast.Import) else
        [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])}
    assert imported <= {"numpy", "AISegmentationLib", "slicer", "vtk", "qt"}, imported
    cmake = open(os.path.join(MODULE_DIR, "CMakeLists.txt"), encoding="utf-8").read()
    assert "Testing/Python/" not in re.sub(r"#.*", "", cmake)
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake
