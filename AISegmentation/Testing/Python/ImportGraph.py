"""The import graph of AISegmentationLib, read from the source (ast over every .py, relative imports resolved; an
import inside a function counts: it is an arrow all the same), and the house's layers (README "Layout"):

    fronts (CommandLine; Cohort, Demo: clients of the Logic)  ->  the Logic (Logic.py, the facade)
        ->  areas (Backends, Interactive, Comparison, Classic, Training, Dicom, Cluster, Pictures, ...)
        ->  the shared base (the root modules: Runtime, SegmentEditing, Segments, Geometry, VolumeIO, ...)
"""

import ast
import os

LIB = "AISegmentationLib"
FRONT_RANKS = {"CommandLine": 4, "Cohort": 3, "Demo": 3}  # the command line may run a cohort or the demo
LOGIC_RANK, AREA_RANK, BASE_RANK = 2, 1, 0


def moduleFiles(libDir):
    """{dotted module name: path} of every .py under libDir (a package's __init__ is the package's name)."""
    modules = {}
    for root, folders, files in os.walk(libDir):
        folders[:] = [name for name in folders if name != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                parts = os.path.relpath(os.path.join(root, name), libDir)[:-3].split(os.sep)
                modules[".".join([LIB, *(parts[:-1] if parts[-1] == "__init__" else parts)])] = os.path.join(root,
                                                                                                           name)
    return modules


def _targets(name, path, modules):
    package = name.split(".") if path.endswith("__init__.py") else name.split(".")[:-1]
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # "from . import X": X is a module when one exists by that name
                full = f"{module}.{alias.name}"
                yield full if full in modules else module


def importGraph(libDir):
    """{module: set of the package's modules it imports}."""
    modules = moduleFiles(libDir)
    return {name: {target for target in _targets(name, path, modules) if target in modules and target != name}
            for name, path in modules.items()}


def room(module, graph):
    """The folder a module lives in under the package ("Backends", "Cohort"...; a folder's package is in it), or
    "Logic", or "" (the base: the package's root modules and its __init__)."""
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and any(name.startswith(module + ".") for name in graph)):
        return parts[1]
    return "Logic" if module == f"{LIB}.Logic" else ""


def rank(roomName, libDir):
    if roomName in FRONT_RANKS:
        return FRONT_RANKS[roomName]
    if roomName == "Logic":
        return LOGIC_RANK
    return AREA_RANK if roomName and os.path.isdir(os.path.join(libDir, roomName)) else BASE_RANK


def circles(graph):
    """The strongly connected components of more than one node (each a sorted list), by Tarjan's algorithm."""
    index, low, stack, onStack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        onStack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in onStack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                onStack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upwardArrows(graph, libDir):
    """["a -> b"] for every arrow between two rooms that does not run down the layers: to a higher or equal rank,
    except between two areas (an area may use another area: their circles are checked at the room level)."""
    arrows = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            fromRoom, toRoom = room(source, graph), room(target, graph)
            if fromRoom == toRoom:
                continue
            fromRank, toRank = rank(fromRoom, libDir), rank(toRoom, libDir)
            if toRank > fromRank or toRank == fromRank != AREA_RANK:
                arrows.append(f"{source} -> {target}")
    return arrows


def roomGraph(graph):
    """{room: set of rooms it imports} (the base and the Logic included, each as one room)."""
    rooms = {}
    for source, targets in graph.items():
        for target in targets:
            fromRoom, toRoom = room(source, graph), room(target, graph)
            if fromRoom != toRoom:
                rooms.setdefault(fromRoom or "base", set()).add(toRoom or "base")
    return rooms
