"""Packaging checks: the extension metadata in the top-level CMakeLists.txt, the ExtensionsIndex catalog entry
(AISegmentation.json) and the files their URLs name.

The rules come from Slicer's source at tag v5.10.0:
- Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json (the newest catalog entry schema in v5.10.0; v1.0.0
  lacks "tier"): required "$schema", "category", "scm_url"; no properties besides the ones listed in SCHEMA below
  ("additionalProperties": false); "scm_type" one of git/local; "tier" an integer from 1 to 5.
- Extensions/CMake/SlicerExtensionDescriptionSpec.cmake: the EXTENSION_* metadata (ICONURL: a 128x128 png;
  SCREENSHOTURLS: space-separated image URLs; DEPENDS: "NA" when there is none).
- Docs/developer_guide/extensions.md ("Distribute an extension"): the repository name starts with "Slicer".
These tests need a source checkout (they read files that an installed extension does not ship): elsewhere they skip.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import urllib.parse

import pytest

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = os.path.dirname(MODULE_DIR)
EXTENSION_NAME = "AISegmentation"
SCHEMA_URL = ("https://raw.githubusercontent.com/Slicer/Slicer/main/Schemas/"
              "slicer-extension-catalog-entry-schema-v1.0.1.json#")

# Slicer v5.10.0 Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json, written as {name: (type, rules)}.
SCHEMA = {
    "$schema": (str, {}),
    "category": (str, {}),
    "scm_url": (str, {}),
    "scm_revision": (str, {}),
    "scm_type": (str, {"enum": ("git", "local")}),
    "build_dependencies": (list, {"items": str}),
    "build_subdirectory": (str, {}),
    "enabled": (bool, {}),
    "tier": (int, {"minimum": 1, "maximum": 5}),
}
SCHEMA_REQUIRED = ("$schema", "category", "scm_url")

# Metadata that Slicer 5.10's extension template (Utilities/Templates/Extensions/Default/CMakeLists.txt) sets.
CMAKE_METADATA = ("HOMEPAGE", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS")
# Beyond the template, the Extensions Manager groups extensions by EXTENSION_CATEGORY.
CMAKE_REQUIRED = CMAKE_METADATA + ("CATEGORY",)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
MAX_SCREENSHOT_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def checkout():
    """The repository root; skips outside a source checkout (e.g. the extension installed in Slicer)."""
    topCMake = os.path.join(ROOT, "CMakeLists.txt")
    if not os.path.isfile(topCMake) or not os.path.isfile(os.path.join(MODULE_DIR, "CMakeLists.txt")):
        pytest.skip("not a source checkout: the top-level CMakeLists.txt is absent")
    return ROOT


@pytest.fixture(scope="module")
def metadata(checkout):
    return cmakeMetadata(os.path.join(checkout, "CMakeLists.txt"))


@pytest.fixture(scope="module")
def entry(checkout):
    path = os.path.join(checkout, EXTENSION_NAME + ".json")
    assert os.path.isfile(path), f"the ExtensionsIndex catalog entry {EXTENSION_NAME}.json is missing"
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def cmakeMetadata(path):
    """{"HOMEPAGE": value, ...} from the set(EXTENSION_<NAME> "value") lines, plus "project" (the project name)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    values = dict(re.findall(r'^\s*set\s*\(\s*EXTENSION_(\w+)\s+"([^"]*)"\s*\)', text, re.M))
    project = re.search(r"^\s*project\s*\(\s*(\w+)", text, re.M | re.I)
    values["project"] = project.group(1) if project else None
    return values


def githubLocation(url):
    """(owner, repository, branch or None, path or None) of a github.com or raw.githubusercontent.com URL, else None.

    Understood forms: https://github.com/<owner>/<repo>[.git][#fragment],
    https://github.com/<owner>/<repo>/blob/<branch>/<path> and
    https://raw.githubusercontent.com/<owner>/<repo>/<branch>/<path>.
    """
    parts = urllib.parse.urlsplit(url)
    segments = [urllib.parse.unquote(s) for s in parts.path.split("/") if s]
    if parts.netloc == "raw.githubusercontent.com" and len(segments) >= 4:
        return segments[0], segments[1], segments[2], "/".join(segments[3:])
    if parts.netloc == "github.com" and len(segments) >= 2:
        repository = segments[1][:-4] if segments[1].endswith(".git") else segments[1]
        if len(segments) == 2:
            return segments[0], repository, None, None
        if len(segments) >= 5 and segments[2] == "blob":
            return segments[0], repository, segments[3], "/".join(segments[4:])
    return None


def metadataUrls(metadata):
    return [("EXTENSION_HOMEPAGE", metadata.get("HOMEPAGE", ""))] + [
        ("EXTENSION_ICONURL", metadata.get("ICONURL", ""))] + [
        ("EXTENSION_SCREENSHOTURLS", url) for url in metadata.get("SCREENSHOTURLS", "").split()]


def isTracked(root, relativePath):
    """Whether git tracks the file (when the checkout is a git work tree and git runs), else whether it exists."""
    git = shutil.which("git")
    if git and os.path.exists(os.path.join(root, ".git")):
        result = subprocess.run([git, "-C", root, "ls-files", "--error-unmatch", "--", relativePath],
                                capture_output=True, text=True)
        if result.returncode in (0, 1):  # 1: git ran and the path is not tracked
            return result.returncode == 0
    return os.path.isfile(os.path.join(root, relativePath))


def imageSize(path):
    """(kind, width, height) of a PNG or JPEG file; width and height are None for a JPEG."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head.startswith(PNG_SIGNATURE) and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        return "png", width, height
    if head.startswith(JPEG_SIGNATURE):
        return "jpeg", None, None
    return None, None, None


def repositoryFile(url):
    """The repository-relative path that a GitHub URL of the metadata names (None for other URLs).

    Every GitHub URL of the metadata is taken to point into this repository; test_cmake_and_catalog_entry_agree
    checks that they all name the repository of scm_url.
    """
    location = githubLocation(url)
    if location is None:
        return None
    if location[3] is None and urllib.parse.urlsplit(url).fragment == "readme":
        return "README.md"
    return location[3]


def test_catalog_entry_follows_the_slicer_5_10_schema(entry):
    missing = [key for key in SCHEMA_REQUIRED if key not in entry]
    assert missing == [], f"required by the catalog entry schema: {missing}"
    unknown = sorted(set(entry) - set(SCHEMA))
    assert unknown == [], f"not allowed by the catalog entry schema (additionalProperties is false): {unknown}"
    for key, value in entry.items():
        kind, rules = SCHEMA[key]
        # bool is a subclass of int in Python, but not a JSON integer.
        assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), (
            f"{key} must be a {kind.__name__}, not {value!r}")
        if "enum" in rules:
            assert value in rules["enum"], f"{key} must be one of {rules['enum']}, not {value!r}"
        if "minimum" in rules:
            assert rules["minimum"] <= value <= rules["maximum"], f"{key} out of range: {value}"
        if "items" in rules:
            assert all(isinstance(item, rules["items"]) for item in value), f"{key} items must be strings"
    assert entry["$schema"] == SCHEMA_URL, "name the catalog entry schema version that Slicer 5.10 provides"
    assert entry["category"].strip(), "category must not be empty"


def test_catalog_entry_names_a_slicer_git_repository(entry):
    assert entry.get("scm_type", "git") == "git"
    url = urllib.parse.urlsplit(entry["scm_url"])
    assert url.scheme in ("https", "git"), f"scm_url must be a git URL (https:// or git://), not {entry['scm_url']}"
    location = githubLocation(entry["scm_url"])
    assert location is not None and location[2:] == (None, None), f"scm_url must name a repository: {entry['scm_url']}"
    assert location[1].startswith("Slicer"), f"the repository name must start with 'Slicer', not {location[1]!r}"
    assert entry.get("scm_revision", "").strip(), "scm_revision names the branch (or commit) to build"


def test_cmake_sets_the_extension_metadata(metadata):
    assert metadata["project"] == EXTENSION_NAME, "project() must match the catalog entry's file name"
    missing = [f"EXTENSION_{name}" for name in CMAKE_REQUIRED if not metadata.get(name, "").strip()]
    assert missing == [], f"missing or empty in the top-level CMakeLists.txt: {missing}"
    for name, url in metadataUrls(metadata):
        assert url.startswith("https://"), f"{name}: {url!r} is not an https URL"
        assert "&" not in url and "?" not in url, f"{name}: URL parameters are not supported ({url})"
    assert metadata["SCREENSHOTURLS"].split(), "at least one screenshot"


def test_cmake_and_catalog_entry_agree(metadata, entry):
    assert metadata["CATEGORY"] == entry["category"]
    depends = [] if metadata["DEPENDS"] == "NA" else metadata["DEPENDS"].split()
    assert depends == entry.get("build_dependencies", []), "EXTENSION_DEPENDS and build_dependencies differ"
    scm = githubLocation(entry["scm_url"])
    for name, url in metadataUrls(metadata):
        location = githubLocation(url)
        if location is None:
            continue
        assert location[:2] == scm[:2], (
            f"{name} points into {location[0]}/{location[1]}, scm_url into {scm[0]}/{scm[1]}")
        if location[2] is not None:
            assert location[2] == entry["scm_revision"], f"{name} names branch {location[2]!r}, not scm_revision"


def test_every_metadata_url_into_this_repository_names_a_tracked_file(checkout, metadata):
    untracked = []
    for name, url in metadataUrls(metadata):
        path = repositoryFile(url)
        if path is not None and not isTracked(checkout, path):
            untracked.append(f"{name}: {path}")
    assert untracked == [], f"metadata URLs name files that the repository does not track: {untracked}"


def test_icon_is_a_128_pixel_png_and_screenshots_are_pictures(checkout, metadata):
    icon = repositoryFile(metadata["ICONURL"])
    assert icon is not None, "the icon should live in this repository"
    assert os.path.isfile(os.path.join(checkout, icon)), f"{icon} is missing"
    assert imageSize(os.path.join(checkout, icon)) == ("png", 128, 128), "Slicer expects a 128x128 png icon"
    for url in metadata["SCREENSHOTURLS"].split():
        path = repositoryFile(url)
        if path is None:
            continue
        fullPath = os.path.join(checkout, path)
        assert os.path.isfile(fullPath), f"{path} is missing"
        kind, width, height = imageSize(fullPath)
        assert kind in ("png", "jpeg"), f"{path} is not a PNG or JPEG picture"
        if kind == "png":
            assert width >= 400 and height >= 200, f"{path} is too small for a screenshot: {width}x{height}"
        assert os.path.getsize(fullPath) < MAX_SCREENSHOT_BYTES, f"{path} is over 1 MB"


def test_url_parser_understands_the_forms_in_use():
    assert githubLocation("https://github.com/o/SlicerX.git") == ("o", "SlicerX", None, None)
    assert githubLocation("https://github.com/o/SlicerX#readme") == ("o", "SlicerX", None, None)
    assert githubLocation("https://github.com/o/SlicerX/blob/main/a/b.png") == ("o", "SlicerX", "main", "a/b.png")
    raw = "https://raw.githubusercontent.com/o/SlicerX/main/a/b.png"
    assert githubLocation(raw) == ("o", "SlicerX", "main", "a/b.png")
    assert githubLocation("https://www.example.org/a.png") is None


def test_readme_install_section_names_the_runtime_packages_and_the_environments_folder(checkout):
    with open(os.path.join(checkout, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    match = re.search(r"^## Install in 3D Slicer\n(.*?)(?=^## )", readme, re.M | re.S)
    assert match, "README.md has no '## Install in 3D Slicer' section"
    section = match.group(1)
    with open(os.path.join(MODULE_DIR, "Resources", "requirements.txt"), encoding="utf-8") as f:
        packages = [re.split(r"[<>=!~;\[ ]", line.strip())[0] for line in f if line.strip() and line[0] != "#"]
    assert packages and [p for p in packages if p not in section] == [], "runtime packages missing from the section"
    environments = os.path.join(MODULE_DIR, "AISegmentationLib", "Backends", "Environments", "Environments.py")
    with open(environments, encoding="utf-8") as f:
        variable = re.search(r'^ENVIRONMENTS_VARIABLE = "(\w+)"', f.read(), re.M).group(1)
    assert variable in section, f"the section should say how to move the environments ({variable})"


def _registeredTests(tmp_path, *cmakeArguments):
    """Names of the ctests Testing/Python/CMakeLists.txt registers, configured for real by CMake in a bare project."""
    project = tmp_path / "project"
    project.mkdir(parents=True)
    testingDir = os.path.join(MODULE_DIR, "Testing", "Python").replace("\\", "/")
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\nproject(Probe NONE)\nenable_testing()\n"
        f'add_subdirectory("{testingDir}" testing)\n')
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(project), "-B", str(build), *cmakeArguments], check=True, capture_output=True)
    listing = subprocess.run(["ctest", "-N"], cwd=build, check=True, capture_output=True, text=True).stdout
    return [line.split(":", 1)[1].strip() for line in listing.splitlines() if line.strip().startswith("Test")
            and ":" in line]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs CMake")
def test_the_headless_suite_is_a_ctest_only_when_asked_for(tmp_path):
    """Slicer's extension build machines configure with defaults: no .venv, no pip install of slicer-core or torch."""
    assert _registeredTests(tmp_path / "default") == []
    assert _registeredTests(tmp_path / "on", "-DAISegmentation_HEADLESS_TESTS:BOOL=ON") == ["py_AISegmentationHeadless"]
