"""Cohorts of synthetic phantom cases on disk, for the cohort tests and the cohort benchmark.

Each case is a phantom the tiny nnU-Net model segments with Dice > 0.9 (DevTools/TinyModels.phantomVolume), written
as NIfTI with its truth label map (values 1 = bright_sphere, 2 = dark_sphere) as the reference.
"""

import csv
import json
import os

import numpy as np

from . import build_tiny_models

PHANTOM_NAMES = {1: "bright_sphere", 2: "dark_sphere"}


def writePhantomCase(logic, folder, caseId, seed):
    """(image path, reference path) of one phantom case written into folder."""
    import slicer

    from .TinyModels import phantomVolume

    (volume,), truth = phantomVolume(logic, seed)
    image = logic.saveVolume(volume, os.path.join(folder, f"{caseId}.nii.gz"))
    labels = logic.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", f"{caseId} truth")
    labels.CopyOrientation(volume)
    slicer.util.updateVolumeFromArray(labels, truth.astype(np.uint8))
    reference = logic.saveVolume(labels, os.path.join(folder, f"{caseId}_reference.nii.gz"))
    with open(reference + ".labels.json", "w", encoding="utf-8") as file:  # names: compared by name
        json.dump({str(value): name for value, name in PHANTOM_NAMES.items()}, file)
    logic.scene.RemoveNode(labels)
    logic.scene.RemoveNode(volume)
    return image, reference


def writeManifest(path, rows):
    """A cohort CSV from dicts with the Manifest columns (missing ones left empty); returns the path."""
    columns = ["case", "image", "reference", "options", "prediction"]
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: (json.dumps(value) if key == "options" and isinstance(value, dict) else value)
                             for key, value in row.items()})
    return path


def writePhantomCohort(logic, folder, count, firstSeed=5000, prefix="phantom"):
    """Manifest rows of `count` phantom cases written under folder/images (paths relative to folder)."""
    images = os.path.join(folder, "images")
    os.makedirs(images, exist_ok=True)
    rows = []
    for index in range(count):
        caseId = f"{prefix}{index:03d}"
        image, reference = writePhantomCase(logic, images, caseId, firstSeed + index)
        rows.append({"case": caseId, "image": os.path.relpath(image, folder),
                     "reference": os.path.relpath(reference, folder)})
    return rows


def phantomModelOptions(tinyModels):
    """Backend options of the tiny phantom nnU-Net model on the CPU, quick (no test-time mirroring)."""
    return {"modelFolders": [tinyModels["phantomModel"]], "device": "cpu", "tta": False}


__all__ = ["PHANTOM_NAMES", "build_tiny_models", "phantomModelOptions", "writeManifest", "writePhantomCase",
           "writePhantomCohort"]
