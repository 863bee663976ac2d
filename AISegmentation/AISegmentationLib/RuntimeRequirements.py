"""What AISegmentation needs in Slicer's own Python (``Resources/requirements.txt``) and what is missing.

The file lists lower bounds only (``name>=version``). A requirement is *satisfied* when the running Python has the
distribution at a version that meets it, *missing* when the distribution is absent (RuntimeInstall installs those,
after the user agreed), and a *conflict* when the distribution is installed at a version that does not meet it:
AISegmentation never upgrades, downgrades or replaces an installed package (Slicer's own, or another extension's),
so a conflict is reported as an error message and nothing is installed.

Parsing uses the ``packaging`` library: Slicer ships it (5.10: packaging 25.0 from
SuperBuild/External_python-pythonqt-requirements.cmake; 5.12: 26.2). Where it is absent (a bare virtual environment)
pip's vendored copy is used, since nothing can be installed without pip anyway. This module imports neither Qt nor
slicer and never installs anything.
"""

import importlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError:  # a Python without the packaging distribution: pip vendors the same library
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import InvalidVersion, Version

REQUIREMENTS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Resources",
                                 "requirements.txt")

# Python distributions in Slicer 5.10.0's own Python, with the versions it ships (Slicer/Slicer tag v5.10.0:
# SuperBuild/External_python-*-requirements.cmake, External_python-numpy/-scipy/-pip/-setuptools/-wheel.cmake).
# SimpleITK, vtk and ITK are built by Slicer's superbuild (External_SimpleITK/VTK/ITK.cmake). The oldest supported
# Slicer sets the ceiling for our lower bounds: a bound above one of these versions would make 5.10 unusable.
SLICER_5_10_PACKAGES = {
    "certifi": "2025.4.26", "cffi": "1.17.1", "chardet": "5.2.0", "charset-normalizer": "3.4.2", "couchdb": "1.2",
    "cryptography": "45.0.3", "deprecated": "1.2.18", "dicomweb-client": "0.60.0", "gitdb": "4.0.12",
    "gitpython": "3.1.44", "idna": "3.10", "numpy": "2.0.2", "packaging": "25.0", "pillow": "11.2.1",
    "pip": "25.1.1", "pycparser": "2.22", "pydicom": "2.4.4", "pygithub": "2.6.1", "pyjwt": "2.10.1",
    "pynacl": "1.5.0", "pyparsing": "3.2.3", "python-dateutil": "2.9.0.post0", "requests": "2.32.3",
    "retrying": "1.3.4", "scipy": "1.13.1", "setuptools": "80.9.0", "six": "1.17.0", "smmap": "5.0.2",
    "typing-extensions": "4.14.0", "urllib3": "2.4.0", "wheel": "0.45.1", "wrapt": "1.17.2",
}
# Built by Slicer itself: no wheel from an index may ever replace them.
SLICER_BUILT_PACKAGES = frozenset({"simpleitk", "vtk", "itk"})
# Added in 5.12 (SuperBuild/External_python-*.cmake at v5.12.0).
SLICER_5_12_ADDED_PACKAGES = frozenset({"dcmqi", "highdicom", "pyjpegls", "simpleitk"})
# Never listed in the runtime requirements: Slicer's own core packages, and torch (it lives in backend environments).
NEVER_REQUIRED_PACKAGES = frozenset({"numpy", "simpleitk", "vtk", "itk", "torch"})


def isSlicerPackage(name):
    """True for a distribution that some supported Slicer ships or builds in its own Python."""
    key = canonicalize_name(name)
    return key in SLICER_5_10_PACKAGES or key in SLICER_BUILT_PACKAGES or key in SLICER_5_12_ADDED_PACKAGES


def parseRequirementsFile(path=None):
    """The requirements of a plain requirements file (default: Resources/requirements.txt) as Requirement objects.

    Only ``name<specifiers>[; marker]`` lines are allowed (comments and blank lines are skipped): pip options,
    ``-r`` includes, URLs and extras would let the file reach beyond what this module checks.
    """
    path = path or REQUIREMENTS_FILE
    requirements = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            where = f"{path}:{number}"
            if text.startswith("-"):
                raise ValueError(f"{where}: pip options ('{text}') are not allowed in the runtime requirements")
            try:
                requirement = Requirement(text)
            except InvalidRequirement as error:
                raise ValueError(f"{where}: '{text}' is not a valid requirement ({error})") from None
            if requirement.url or requirement.extras:
                raise ValueError(f"{where}: '{text}': URLs and extras are not allowed in the runtime requirements")
            requirements.append(requirement)
    return requirements


def installedVersions():
    """{canonical name: version} of every distribution the running Python sees; the first on sys.path wins."""
    importlib.invalidate_caches()
    versions = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and canonicalize_name(name) not in versions:
            versions[canonicalize_name(name)] = distribution.version
    return versions


@dataclass
class RequirementStatus:
    """One runtime requirement against the running Python. state: satisfied, missing, conflict or notNeeded."""

    requirement: str
    name: str
    installedVersion: str
    state: str
    message: str = ""


def _status(requirement, installed):
    name = canonicalize_name(requirement.name)
    text = str(requirement)
    if requirement.marker is not None and not requirement.marker.evaluate():
        return RequirementStatus(text, name, installed.get(name), "notNeeded")
    version = installed.get(name)
    if version is None:
        return RequirementStatus(text, name, None, "missing")
    if requirement.specifier.contains(version, prereleases=True):
        return RequirementStatus(text, name, version, "satisfied")
    owner = "ships with Slicer" if isSlicerPackage(name) else "is installed in Slicer's Python by something else"
    return RequirementStatus(text, name, version, "conflict", (
        f"AISegmentation needs {text}, but {name} {version} {owner}. AISegmentation never replaces an installed "
        f"package: use a Slicer version that ships a newer {name}, or update {name} yourself."))


def checkRequirements(path=None):
    """RequirementStatus of every requirement in the file against the running Python (reads metadata only)."""
    installed = installedVersions()
    return [_status(requirement, installed) for requirement in parseRequirementsFile(path)]


def missingRequirements(path=None):
    """Requirement strings that are not installed at all (what an install would add)."""
    return [status.requirement for status in checkRequirements(path) if status.state == "missing"]


def conflictMessages(path=None):
    """One message per requirement whose package is installed at a version that does not meet it."""
    return [status.message for status in checkRequirements(path) if status.state == "conflict"]


def installedConstraints():
    """Constraints-file text that pins every installed distribution to its installed version.

    Passed to pip with ``-c``, it lets pip add new distributions but never upgrade, downgrade or replace one that
    is there: when the new ones need another version of an installed package, pip stops before changing anything.
    """
    lines = []
    for name, version in sorted(installedVersions().items()):
        try:
            Version(version)
        except InvalidVersion:
            logging.warning("Not pinning %s: its installed version '%s' is not a valid version", name, version)
            continue
        lines.append(f"{name}=={version}")
    return "\n".join(lines) + "\n"
