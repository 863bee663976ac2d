"""A backend's options: the shared declaration (:class:`BackendOption` is AISegmentationLib.Options.Option, as the
classic tools use it) plus what only backends have: the device option, actions besides a run, and what a cohort
manifest may vary per case.
"""

import re
from dataclasses import dataclass

from ..Options import (  # noqa: F401 - the shared declaration machinery, offered here to the backends
    TYPES, Option, formatText, listSeparator, parseListText, parseText, validateOptions, validateValue)

BackendOption = Option
CUDA_DEVICES = tuple(f"cuda:{index}" for index in range(8))  # one GPU by its index, as torch numbers them
DEVICES = ("auto", "cpu", "cuda", *CUDA_DEVICES, "mps")


@dataclass(frozen=True)
class BackendAction:
    """Something a backend does apart from a run, with one text argument (e.g. importing weights from a zip)."""

    name: str  # method name on the backend: method(context, value) -> list of str
    help: str = ""
    metavar: str = "VALUE"
    resultTitle: str = ""  # printed before the returned items

    @property
    def cliFlag(self):
        return re.sub(r"(?<!^)(?=[A-Z])", "-", self.name).lower()


def deviceOption(devices=DEVICES):
    return BackendOption("device", "str", "auto", "compute device (auto: the best one available; cuda: the first GPU, "
                         "cuda:N: the GPU of index N)", choices=devices, perCase=True)


def requireCaseOptions(declarations, caseOptions, where, backendTitle="the backend"):
    """ValueError unless a manifest row's own options are all declared perCase (what a case may vary). where: the
    row ("cohort.csv, line 3 (case 'c1')"). Unknown names are left to validateOptions."""
    known = {option.name: option for option in declarations}
    allowed = ", ".join(option.name for option in declarations if option.perCase) or "none"
    for name in caseOptions or {}:
        option = known.get(name)
        if option is None or option.perCase:
            continue
        if option.type == "path":
            why = ("it names files the backend loads, and a model folder or model file is code (its pickled "
                   "checkpoints run when loaded): only whoever runs the cohort chooses it")
        else:
            why = ("paths to code or weights, environments, downloads, usage statistics and other switches of what "
                   "the backend may do are chosen by whoever runs the cohort, not by the manifest")
        raise ValueError(f"{where}: the manifest may not set option '{name}' of {backendTitle} for a case: {why}. "
                         f"A case may vary only {allowed}; give '{name}' on the command line for the whole cohort")
