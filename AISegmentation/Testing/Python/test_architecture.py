"""House rules that can be checked mechanically: the Lib stays Qt-free, CMake lists what ships, the module file keeps
Slicer's template shape, tests and scripts import each other one way, backends are plugins."""

import ast
import os
import re
import sys

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB_DIR = os.path.join(MODULE_DIR, "AISegmentationLib")
SECTIONS_DIR = os.path.join(MODULE_DIR, "AISegmentationWidgets")  # the panel's sections (Qt side)
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
            offenders += [f"{name}: {module}" for module in _imports(path)
                          if module in FORBIDDEN or module.split(".")[0] == "AISegmentationWidgets"]
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
    for folder in (LIB_DIR, SECTIONS_DIR, os.path.join(MODULE_DIR, "Resources")):
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
    commandLine = os.path.join(LIB_DIR, "CommandLine")
    paths = [os.path.join(MODULE_DIR, "AISegmentation.py")] + _pythonFiles(SECTIONS_DIR) + [
        os.path.join(commandLine, name) for name in os.listdir(commandLine) if name.endswith(".py")]
    assert len(paths) >= 8
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
    AISegmentationLib) and its requirements file, all in Backends/<Name>/, plus the data files it declares and its own
    parent-side helpers (.py). The shared machinery's rooms (Jobs/, Environments/, Child/...) are packages: they have
    an __init__.py, a backend's folder has none."""
    from AISegmentationLib.Backends import Registry
    from AISegmentationLib.Backends.Backend import Backend

    backendsDir = os.path.join(LIB_DIR, "Backends")
    folders = {name for name in os.listdir(backendsDir) if os.path.isdir(os.path.join(backendsDir, name)) and
               name != "__pycache__" and not os.path.isfile(os.path.join(backendsDir, name, "__init__.py"))}
    backends = Registry.allBackends().values()
    assert {os.path.basename(backend.folder) for backend in backends} == folders
    for backend in backends:
        assert isinstance(backend, Backend) and os.path.dirname(backend.folder) == backendsDir, backend.name
        files = set(os.listdir(backend.folder)) - {"__pycache__"}
        parent = os.path.basename(sys.modules[type(backend).__module__].__file__)
        declared = {parent, backend.childModule, os.path.basename(backend.requirementsPath), *backend.resources}
        assert declared <= files and all(name.endswith(".py") for name in files - declared), files
        assert backend.options and backend.title and backend.environmentName
        child = [module.split(".")[0] for module in _imports(backend.childModulePath)]
        assert "slicer" not in child and "AISegmentationLib" not in child, child


def test_each_classic_tool_is_one_registered_folder():
    """Adding a classic tool touches its folder Classic/<Tool>/, one line of Classic/Registry.py and CMake: every tool
    folder holds a registered ClassicTool (its declaration beside its run), and every registry line is one folder."""
    from AISegmentationLib.Classic import Registry
    from AISegmentationLib.Classic.Tool import NEEDS, ClassicTool
    from AISegmentationLib.Options import Option

    classicDir = os.path.join(LIB_DIR, "Classic")
    folders = {name for name in os.listdir(classicDir) if os.path.isdir(os.path.join(classicDir, name)) and
               name != "__pycache__"}
    tools = list(Registry.allTools().values())
    assert len(tools) == len(Registry.TOOLS) >= 4
    toolFolders = [os.path.dirname(sys.modules[type(tool).__module__].__file__) for tool in tools]
    assert {os.path.basename(folder) for folder in toolFolders} == folders
    assert {os.path.dirname(folder) for folder in toolFolders} == {classicDir}
    for tool in tools:
        assert isinstance(tool, ClassicTool) and tool.name and tool.title and tool.help, type(tool)
        assert all(isinstance(option, Option) for option in tool.options), tool.name
        assert set(tool.needs) <= set(NEEDS), tool.name
        assert all(callable(getattr(tool, action, None)) for action in tool.actions), tool.name


def test_no_front_names_a_classic_tool_and_each_gets_its_subcommand():
    """The panel, the CLI, the web page and the Logic facade are generated from the declarations for every tool but
    the four whose controls predate them (handMadeFronts): they name no other tool, import nothing of its folder, and
    the CLI has its subcommand."""
    from AISegmentationLib.Classic import Registry
    from AISegmentationLib.CommandLine.Main import buildParser

    tools = [tool for tool in Registry.allTools().values() if not tool.handMadeFronts]
    fronts = [os.path.join(MODULE_DIR, "AISegmentation.py"), os.path.join(LIB_DIR, "Logic.py"),
              *_pythonFiles(SECTIONS_DIR), *_pythonFiles(os.path.join(LIB_DIR, "CommandLine")),
              *_pythonFiles(os.path.join(MODULE_DIR, "AISegmentationWeb"))]
    for tool in tools:
        folder = os.path.basename(os.path.dirname(sys.modules[type(tool).__module__].__file__))
        for path in fronts:
            assert tool.name not in _codeLiterals(path), f"{os.path.basename(path)} names {tool.name}"
            assert not any(f"Classic.{folder}" in module for module in _imports(path)), (path, folder)
    subcommands = next(action for action in buildParser()._actions if action.dest == "command").choices
    assert {tool.name for tool in tools} <= set(subcommands)


def test_the_option_declaration_is_shared_not_copied():
    """Backends and classic tools declare options with one class (AISegmentationLib/Options.py)."""
    from AISegmentationLib import Options
    from AISegmentationLib.Backends import Options as BackendOptions

    assert BackendOptions.BackendOption is Options.Option
    assert BackendOptions.validateOptions is Options.validateOptions and BackendOptions.parseText is Options.parseText
    backendSource = open(os.path.join(LIB_DIR, "Backends", "Options.py"), encoding="utf-8").read()
    assert "def validateValue" not in backendSource and "class BackendOption" not in backendSource


def test_module_file_has_the_five_template_classes():
    tree = ast.parse(open(os.path.join(MODULE_DIR, "AISegmentation.py"), encoding="utf-8").read())
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    assert {"AISegmentation", "AISegmentationParameterNode", "AISegmentationWidget", "AISegmentationLogic",
            "AISegmentationTest"} <= classes


def test_widget_uses_only_widgets_that_the_ui_file_defines_and_binds_parameter_node_fields():
    import xml.etree.ElementTree as ElementTree

    source = open(os.path.join(MODULE_DIR, "AISegmentation.py"), encoding="utf-8").read()
    sections = "".join(open(path, encoding="utf-8").read() for path in _pythonFiles(SECTIONS_DIR))
    ui = ElementTree.parse(os.path.join(MODULE_DIR, "Resources", "UI", "AISegmentation.ui"))
    widgetNames = {w.get("name") for w in ui.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", source + sections))
    assert used and used <= widgetNames, sorted(used - widgetNames)
    assert "thresholdApplyButton" in re.findall(r"self\.ui\.(\w+)", sections)  # the sections are read too
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
    # Slicer's Python ships numpy and scipy (Base/Python/slicer/__init__.py imports both at startup)
    assert imported <= {"numpy", "scipy", "AISegmentationLib", "slicer", "vtk", "qt"}, imported
    cmake = open(os.path.join(MODULE_DIR, "CMakeLists.txt"), encoding="utf-8").read()
    assert "Testing/Python/" not in re.sub(r"#.*", "", cmake)
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in cmake


def _pythonFiles(folder):
    return sorted(os.path.join(root, name) for root, folders, files in os.walk(folder) for name in files
                  if name.endswith(".py") and "__pycache__" not in root)


def _codeLiterals(path):
    """String literals of a file other than its docstrings (prose may name a folder; code may not)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_tests_scripts_and_developer_tools_import_each_other_one_way():
    """Scripts/ (the commands users and developers run: aisegmentation, run_tests, the benchmarks) and the tests both
    build on DevTools/ (tiny models, synthetic images, real nnInteractive servers); no test imports or runs a file
    of Scripts/, no script imports the tests, and DevTools imports neither."""
    repository = os.path.dirname(MODULE_DIR)
    testing = os.path.join(MODULE_DIR, "Testing", "Python")
    scripts, devTools = os.path.join(repository, "Scripts"), os.path.join(repository, "DevTools")
    scriptNames = {os.path.basename(path)[:-3] for path in _pythonFiles(scripts)}
    testNames = {os.path.basename(path)[:-3] for path in _pythonFiles(testing)}
    assert scriptNames and testNames and os.path.isfile(os.path.join(devTools, "__init__.py"))
    for path in _pythonFiles(testing):
        imported = {module.split(".")[0] for module in _imports(path)}
        assert not imported & scriptNames, (path, imported & scriptNames)
        for literal in _codeLiterals(path):
            assert not any(name in literal for name in scriptNames), (path, literal)
    for path in _pythonFiles(scripts):
        imported = {module.split(".")[0] for module in _imports(path)}
        assert not imported & testNames, (path, imported & testNames)
        assert not any("Testing" in literal for literal in _codeLiterals(path)), path
    for path in _pythonFiles(devTools):
        imported = {module.split(".")[0] for module in _imports(path)}
        assert not imported & (testNames | scriptNames), (path, imported & (testNames | scriptNames))
        assert not any(word in literal for literal in _codeLiterals(path) for word in ("Testing", "Scripts")), path


def test_the_module_and_the_library_never_import_the_command_line_or_developer_tools():
    """The command line is product code inside the Lib (run as ``python -m AISegmentationLib.CommandLine``), but the
    Slicer module loads without it; nothing shipped imports DevTools/."""
    commandLine = os.path.join(LIB_DIR, "CommandLine")
    for path in [os.path.join(MODULE_DIR, "AISegmentation.py")] + _pythonFiles(SECTIONS_DIR) + _pythonFiles(LIB_DIR):
        imported = set(_imports(path))
        assert not any(module.split(".")[0] == "DevTools" for module in imported), path
        if not path.startswith(commandLine + os.sep):
            assert not any("CommandLine" in module.split(".") for module in imported), path


# The import graph (Testing/Python/ImportGraph.py: ast over every .py of the Lib, imports inside functions too) ------

def _short(names):
    return frozenset(name.split(".", 1)[1] if "." in name else name for name in names)


def test_the_import_graph_has_no_circle():
    from ImportGraph import circles, importGraph

    assert [sorted(_short(circle)) for circle in circles(importGraph(LIB_DIR))] == []


def test_the_rooms_import_each_other_without_a_circle():
    from ImportGraph import circles, importGraph, roomGraph

    assert circles(roomGraph(importGraph(LIB_DIR))) == []


def test_no_arrow_runs_back_up_the_layers():
    """Fronts (CommandLine; Cohort and Demo, clients of the Logic) -> Logic -> areas -> the shared base: the base
    imports no area, no area imports the Logic or a front, the Logic imports no front."""
    from ImportGraph import upwardArrows, importGraph

    assert upwardArrows(importGraph(LIB_DIR), LIB_DIR) == []


def _facadeClassBody():
    """(names defined in AISegmentationLogic's class body, {area attribute: its class name} typed in __init__)."""
    tree = ast.parse(open(os.path.join(LIB_DIR, "Logic.py"), encoding="utf-8").read())
    facade = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "AISegmentationLogic")
    names, areas = set(), {}
    for node in facade.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            names.update(target.id for target in getattr(node, "targets", [getattr(node, "target", None)])
                         if isinstance(target, ast.Name))
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            areas.update({statement.target.attr: statement.annotation.id for statement in ast.walk(node)
                          if isinstance(statement, ast.AnnAssign) and isinstance(statement.annotation, ast.Name)})
    return names, areas


def test_every_public_name_of_the_facade_is_written_in_its_class_body():
    """No name of the Logic is generated at import: a reader and an IDE find each one in Logic.py, and its areas are
    typed attributes (self.ai: AILogic ...)."""
    from AISegmentationLib.Logic import AISegmentationLogic

    written, areas = _facadeClassBody()
    public = {name for name in dir(AISegmentationLogic) if not name.startswith("_")}
    assert sorted(public - written) == []
    assert {"ai", "interactive", "localServer", "dicom", "pacs", "training"} <= set(areas)


def test_every_logic_call_of_the_readme_exists():
    """`logic.name(` and `logic.area.name(` in README.md name a method of the facade or of one of its typed areas."""
    import AISegmentationLib.Logic as LogicModule

    readme = open(os.path.join(os.path.dirname(MODULE_DIR), "README.md"), encoding="utf-8").read()
    written, areas = _facadeClassBody()
    missing = []
    for first, second in set(re.findall(r"\blogic\.(\w+)(?:\.(\w+))?\s*\(", readme)):
        if first in areas:
            if not second or not hasattr(getattr(LogicModule, areas[first]), second):
                missing.append(f"logic.{first}.{second}")
        elif first not in written:
            missing.append(f"logic.{first}")
    assert sorted(missing) == []
