"""The Slicer-side module file (AISegmentation.py), its panel sections (AISegmentationWidgets/) and its .ui, read as source: desktop Slicer's Qt, ctk and
parameterNodeWrapper cannot be imported headless, so the tests that guard the Slicer side check them statically."""

import ast
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from typing import Annotated, get_args, get_origin

import slicer

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE_FILE = os.path.join(MODULE_DIR, "AISegmentation.py")
UI_FILE = os.path.join(MODULE_DIR, "Resources", "UI", "AISegmentation.ui")
SECTIONS_DIR = os.path.join(MODULE_DIR, "AISegmentationWidgets")


class Annotation:
    """What a parameterNodeWrapper validator or GUI annotation (Choice, WithinRange...) was given in the source."""

    def __init__(self, *args):
        self.args = args

    def __repr__(self):
        return f"{type(self).__name__}{self.args}"


# Named as Slicer's classes (Base/Python/slicer/parameterNodeWrapper/validators.py and guiConnectors.py), so that the
# annotations of AISegmentation.py evaluate here to records of their arguments.
ANNOTATION_NAMES = ("Choice", "WithinRange", "Minimum", "Maximum", "Decimals", "SingleStep", "RangeBounds",
                    "Exclude", "NotNone", "IsInstance")
ANNOTATIONS = {name: type(name, (Annotation,), {}) for name in ANNOTATION_NAMES}


@dataclass
class Field:
    name: str
    type: object
    annotations: list = field(default_factory=list)
    default: object = None
    hasDefault: bool = False

    def find(self, name):
        return next((a for a in self.annotations if type(a).__name__ == name), None)


def moduleTree():
    with open(MODULE_FILE, encoding="utf-8") as file:
        return ast.parse(file.read())


def moduleClass(name, tree=None):
    tree = tree or moduleTree()
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name)


def sectionFiles():
    """The panel sections' files (AISegmentationWidgets/*.py), which AISegmentationWidget composes."""
    return sorted(os.path.join(SECTIONS_DIR, name) for name in os.listdir(SECTIONS_DIR) if name.endswith(".py"))


def panelFiles():
    """Every file of the Qt side: the module file and its sections."""
    return [MODULE_FILE, *sectionFiles()]


def panelTrees():
    """{path: ast.Module} of the module file and its sections."""
    trees = {}
    for path in panelFiles():
        with open(path, encoding="utf-8") as file:
            trees[path] = ast.parse(file.read(), path)
    return trees


def widgetClasses():
    """AISegmentationWidget and every class of the section files: the panel's code, checked as one widget."""
    trees = panelTrees()
    classes = [moduleClass("AISegmentationWidget", trees[MODULE_FILE])]
    for path in sectionFiles():
        classes += [node for node in trees[path].body if isinstance(node, ast.ClassDef)]
    return classes


def _namespace(tree):
    """Names the parameter node's annotations use: the Lib's constants (really imported), Slicer's node classes
    (real slicer-core classes), pathlib (path fields) and recorders for the validators."""
    namespace = {"Annotated": Annotated, **ANNOTATIONS}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("AISegmentationLib"):
            exec(compile(ast.Module([node], []), MODULE_FILE, "exec"), namespace)  # noqa: S102 - our own source
        elif isinstance(node, ast.Import) and [alias.name for alias in node.names] == ["pathlib"]:
            exec(compile(ast.Module([node], []), MODULE_FILE, "exec"), namespace)  # noqa: S102 - path field types
        elif isinstance(node, ast.ImportFrom) and node.module == "slicer":
            namespace.update({alias.asname or alias.name: getattr(slicer, alias.name) for alias in node.names})
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in node.targets):
            exec(compile(ast.Module([node], []), MODULE_FILE, "exec"), namespace)  # noqa: S102 - our own source
    return namespace


def parameterNodeFields():
    """{name: Field} of AISegmentationParameterNode, with types and annotations evaluated."""
    tree = moduleTree()
    namespace = _namespace(tree)
    fields = {}
    for node in moduleClass("AISegmentationParameterNode", tree).body:
        if not isinstance(node, ast.AnnAssign):
            continue
        annotation = eval(compile(ast.Expression(node.annotation), MODULE_FILE, "eval"), namespace)  # noqa: S307
        baseType, extras = annotation, []
        if get_origin(annotation) is Annotated:
            baseType, *extras = get_args(annotation)
        default = eval(compile(ast.Expression(node.value), MODULE_FILE, "eval"), namespace) \
            if node.value is not None else None  # noqa: S307 - our own source (e.g. AI_BACKENDS[0])
        fields[node.target.id] = Field(node.target.id, baseType, extras, default, node.value is not None)
    return fields


def uiTree():
    return ElementTree.parse(UI_FILE)


def _property(widget, name):
    element = widget.find(f"property[@name='{name}']")
    if element is None or len(element) == 0:
        return None
    value = element[0]
    if value.tag in ("number", "double"):
        return float(value.text)
    if value.tag == "stringlist":
        return [item.text for item in value.findall("string")]
    return value.text


@dataclass
class BoundWidget:
    name: str
    className: str
    parameter: str
    properties: dict


def boundWidgets():
    """Widgets of the .ui that carry SlicerParameterName, with the properties the connectors care about."""
    result = []
    for widget in uiTree().iter("widget"):
        parameter = _property(widget, "SlicerParameterName")
        if parameter:
            properties = {name: _property(widget, name) for name in ("minimum", "maximum", "nodeTypes")}
            result.append(BoundWidget(widget.get("name"), widget.get("class"), parameter, properties))
    return result


def uiWidgetNames():
    return {widget.get("name") for widget in uiTree().iter("widget")}


def methodCalls(classNode, receiver):
    """(method name, ast.Call) for every call receiver.method(...) in a class, e.g. receiver "self.logic"."""
    calls = []
    for node in ast.walk(classNode):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                ast.unparse(node.func.value) == receiver:
            calls.append((node.func.attr, node))
    return calls


def attributeUses(classNode, receiver):
    """Names used as receiver.name anywhere in a class (calls, reads and assignments)."""
    return {node.attr for node in ast.walk(classNode)
            if isinstance(node, ast.Attribute) and ast.unparse(node.value) == receiver}
