"""Option declarations and their validation, shared by every kind of extension (AI backends, classic tools): what
the panel, the CLI and the web page are built from.

An extension lists :class:`Option` objects (name, type, default, choices, unit, help...). The Logic validates every
run's options against them (:func:`validateOptions`: unknown names, types, choices, ranges, each a ValueError that
names the option); the fronts build one editor or argument per option, turning text into values with
:func:`parseText` / :func:`parseListText`.
"""

import os
import re
from dataclasses import dataclass

from .Validation import requireInteger, requireNumber

TYPES = ("str", "path", "bool", "int", "float")


@dataclass(frozen=True)
class Option:
    """One keyword option of a run: a backend's (``startBackend(name, volume, **{option.name: value})``) or a
    classic tool's (``runClassicTool(name, volume, segmentation, ..., **{option.name: value})``)."""

    name: str  # keyword ("stepSize")
    type: str = "str"  # one of TYPES; "path": a file or folder
    default: object = None  # None: not given (the backend or tool decides)
    help: str = ""
    choices: tuple = ()  # the only values allowed (a combo box in the panel)
    unit: str = ""
    minimum: float = None
    maximum: float = None
    minimumInclusive: bool = True
    multiple: bool = False  # a list of values (one value is accepted as a list of one)
    keywords: tuple = ()  # words accepted besides the type, e.g. "all" for a fold number
    required: bool = False
    flag: str = ""  # command-line flag without "--" (default: the name in kebab-case; a bool that defaults to
    # True gets "--no-<flag>")
    title: str = ""  # label in the panel (default: from the name)
    secret: bool = False  # never saved in a scene (e.g. a license number)
    invalid: str = ""  # message for a value of the wrong type, choice or range ("{value}" is replaced)
    perCase: bool = False  # a cohort manifest may set it for one case: what a case may vary (a task, a subset of
    # structures, folds, the device); never a path to code or weights, an environment or a network switch

    def __post_init__(self):
        if self.type not in TYPES:
            raise ValueError(f"Option '{self.name}': unknown type '{self.type}'; choose one of {', '.join(TYPES)}")

    @property
    def cliFlag(self):
        return self.flag or re.sub(r"(?<!^)(?=[A-Z])", "-", self.name).lower()

    @property
    def label(self):
        return self.title or re.sub(r"(?<!^)(?=[A-Z])", " ", self.name).capitalize()


def _scalar(option, value):
    what = f"Option '{option.name}'" + (f" (or {', '.join(option.keywords)})" if option.keywords else "")
    if option.keywords and isinstance(value, str) and value in option.keywords:
        return value
    if option.type == "bool":
        if not isinstance(value, bool) and type(value).__name__ != "bool_":
            raise ValueError(f"{what} must be True or False, got {value!r}")
        value = bool(value)
    elif option.type == "int":
        value = requireInteger(what, value, option.minimum, option.maximum)
    elif option.type == "float":
        value = requireNumber(what, value, option.minimum, option.maximum, option.minimumInclusive, unit=option.unit)
    elif option.type == "path":
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ValueError(f"{what} must be a file or folder path, got {value!r}")
        value = os.fspath(value)
    elif not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {value!r}")
    if option.choices and value not in option.choices:
        raise ValueError(f"{what} must be one of {', '.join(map(str, option.choices))}; got {value!r}")
    return value


def _checked(option, value):
    try:
        return _scalar(option, value)
    except ValueError:
        if option.invalid:
            raise ValueError(option.invalid.replace("{value}", repr(value))) from None
        raise


def validateValue(option, value):
    """The value in its declared type (a list for a multiple option; None: not given), or ValueError."""
    if value is None:
        if option.required:
            raise ValueError(f"Option '{option.name}' is required: {option.help}")
        return None
    if option.multiple:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if option.required and not values:
            raise ValueError(f"Option '{option.name}' needs at least one value: {option.help}")
        return [_checked(option, item) for item in values]
    return _checked(option, value)


def validateOptions(declarations, options, title="the backend"):
    """{name: validated value} for every declared option (defaults filled in for the options not given or given as
    None, as argparse gives an option left out); ValueError for an unknown name.
    title: how the message names the owner of the options (a backend's or a tool's title)."""
    known = {option.name: option for option in declarations}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"Unknown option(s) {', '.join(unknown)} for {title}; its options: "
                         f"{', '.join(known) or 'none'}")
    return {name: validateValue(option, option.default if options.get(name) is None else options[name])
            for name, option in known.items()}


def parseText(option, text):
    """A value from text typed in the panel or on the command line (one item of a multiple option); ValueError."""
    text = text.strip()
    if option.keywords and text in option.keywords:
        return text
    try:
        if option.type == "bool":
            if text.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError
            return text.lower() in ("1", "true", "yes", "on")
        if option.type == "int":
            return int(text)
        if option.type == "float":
            return float(text)
    except ValueError:
        raise ValueError(f"Option '{option.name}': '{text}' is not a valid {option.type}") from None
    return text


def listSeparator(option):
    """Separator of the items of a multiple option typed on one line (paths may hold commas)."""
    return ";" if option.type == "path" else ","


def parseListText(option, text):
    """The value of an option typed on one line: None when empty; a list for a multiple option."""
    if not text.strip():
        return None
    if not option.multiple:
        return parseText(option, text)
    return [parseText(option, item) for item in text.split(listSeparator(option)) if item.strip()]


def formatText(option, value):
    """The inverse of parseListText, for showing a value in a line edit."""
    if value is None:
        return ""
    if option.multiple and isinstance(value, (list, tuple)):
        return listSeparator(option).join(str(item) for item in value)
    return str(value)
