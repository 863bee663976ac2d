"""Every import of the Lib by the fronts that tests may not load resolves: the web page (its own environment, loaded
only by the slow web tests), the panel's sections (Qt), the developer tools and the scripts. A module moved inside
the Lib broke the web server's start once while the Lib's own tests passed."""

import ast
import glob
import os

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODULE_DIR = os.path.join(REPOSITORY, "AISegmentation")
FRONTS = ("AISegmentation/AISegmentation.py", "AISegmentation/AISegmentationWeb/*.py",
          "AISegmentation/AISegmentationWidgets/*.py", "DevTools/*.py", "Scripts/*.py",
          "AISegmentation/Testing/Python/*.py")


def _moduleFile(dotted):
    base = os.path.join(MODULE_DIR, *dotted.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return base if os.path.isdir(base) else None  # a folder without __init__.py: a namespace package


def _definedNames(path):
    names = set()
    for node in ast.parse(open(path, encoding="utf-8").read()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            names.update(_namesIn(node))
    return names


def _namesIn(block):
    names = set()
    for node in ast.walk(block):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _libraryImports():
    for pattern in FRONTS:
        for path in sorted(glob.glob(os.path.join(REPOSITORY, pattern))):
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith(
                        "AISegmentationLib"):
                    yield os.path.relpath(path, REPOSITORY), node.lineno, node.module, [a.name for a in node.names]
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("AISegmentationLib"):
                            yield os.path.relpath(path, REPOSITORY), node.lineno, alias.name, []


def test_every_lib_import_of_the_fronts_resolves():
    broken = []
    for path, line, module, names in _libraryImports():
        moduleFile = _moduleFile(module)
        if moduleFile is None:
            broken.append(f"{path}:{line}: no module {module}")
            continue
        defined = _definedNames(moduleFile) if os.path.isfile(moduleFile) else set()
        for name in names:
            if name != "*" and name not in defined and _moduleFile(f"{module}.{name}") is None:
                broken.append(f"{path}:{line}: {module} has no {name}")
    assert broken == []


def test_the_check_sees_the_fronts_imports():
    found = list(_libraryImports())
    assert any(path.startswith("AISegmentation/AISegmentationWeb/") for path, *_ in found)
    assert any(path.startswith("AISegmentation/AISegmentationWidgets/") for path, *_ in found)
    assert any(module == "AISegmentationLib.JobRunner" for _, _, module, _ in found)
