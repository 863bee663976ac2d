"""The dataset step: training cases -> nnU-Net's raw layout, with one label table across cases.

Structures are matched by name through the comparison's label homogenization (Comparison/LabelMatching: a mapping
of synonyms to structure names, then case-insensitive names): one case's "Liver" and another's "liver" are one
label. Every check runs before anything is written: case ids, channels present and on one grid per case, the same
number of channels in every case, a non-empty segmentation, no two segments of a case that become one structure,
structures missing from a case (``missingStructures``: "error" (default: reported, nothing written), "exclude" the
case, or "background": train with it as background, said in the report), at least 2 training cases per fold, the
held-out test split (``testFraction``, by case, seeded). Then the whole dataset folder is written under a
temporary name and renamed (nothing half-written). A segmentation not on its image's lattice is resampled to it by
nearest neighbour (Slicer's segment export), and the case's notes say so.
"""

import json
import logging
import os
import shutil
import tempfile

import numpy as np
import vtk

from ..AtomicWrite import TEMPORARY_MARKER
from ..Comparison.LabelMatching import normalizedName, readLabelMapping
from ..Geometry import ijkToRasMatrix, sameGeometry, volumeImage
from ..SegmentEditing import requireVolume
from ..VolumeIO import saveVolume

MISSING_POLICIES = ("error", "exclude", "background")
FILE_ENDING = ".nii.gz"


def _segments(segmentationNode):
    segmentation = segmentationNode.GetSegmentation()
    return [(segmentId, segmentation.GetSegment(segmentId).GetName()) for segmentId in segmentation.GetSegmentIDs()]


def _onLattice(segmentationNode, segmentId, volumeNode):
    """True when the segment's labelmap voxels are the volume's voxels (same axes and spacing, whole-voxel offset)."""
    import slicer

    image = slicer.vtkOrientedImageData()
    segmentationNode.GetBinaryLabelmapRepresentation(segmentId, image)
    matrix = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(matrix)
    segmentToWorld = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    relative = np.linalg.inv(ijkToRasMatrix(volumeNode)) @ segmentToWorld
    return bool(np.allclose(relative[:3, :3], np.eye(3), atol=1e-4)
                and np.allclose(relative[:3, 3], np.round(relative[:3, 3]), atol=1e-3))


def checkCases(cases, mapping=None, missingStructures="error"):
    """Checks and the label table, nothing written: (kept cases, {structure: value}, per-case facts, messages)."""
    if missingStructures not in MISSING_POLICIES:
        raise ValueError(f"missingStructures must be one of {MISSING_POLICIES}, got {missingStructures!r}")
    if not cases:
        raise ValueError("No training cases given")
    mapping = readLabelMapping(mapping)
    channels = len(cases[0].volumes)
    structures, facts, messages = {}, {}, []
    for case in cases:
        if len(case.volumes) != channels:
            raise ValueError(f"Case '{case.case}' has {len(case.volumes)} channel(s), case '{cases[0].case}' has "
                             f"{channels}: every case needs the same channels, in the same order")
        for volume in case.volumes:
            requireVolume(volume, f"an image of case '{case.case}'")
        if any(not sameGeometry(volumeImage(case.volumes[0]), volumeImage(v)) for v in case.volumes[1:]):
            raise ValueError(f"The channels of case '{case.case}' are not on one grid; resample them onto one first")
        if case.segmentation is None or not case.segmentation.IsA("vtkMRMLSegmentationNode"):
            raise ValueError(f"Case '{case.case}' has an image and no segmentation (label map)")
        segments = _segments(case.segmentation)
        if not segments:
            raise ValueError(f"The segmentation of case '{case.case}' has no segment")
        byStructure, renamed = {}, []
        for segmentId, name in segments:
            structure = (mapping.structure("reference", name, None) if mapping else None) or name
            key = normalizedName(structure)
            if key in byStructure:
                raise ValueError(f"Case '{case.case}': segments {byStructure[key][1]!r} and {name!r} both become "
                                 f"structure {structure!r}; a case's segments must stay apart")
            byStructure[key] = (segmentId, name)
            structures.setdefault(key, structure)
            if structure != name:
                renamed.append((name, structures[key]))
        onGrid = all(_onLattice(case.segmentation, segmentId, case.volumes[0]) for segmentId, _ in segments)
        if not onGrid:
            case.notes.append("segmentation resampled onto the image's grid (nearest neighbour)")
        facts[case.case] = {"segments": byStructure, "renamed": renamed}
    table = {structures[key]: value for value, key in enumerate(structures, start=1)}
    kept = []
    for case in cases:
        missing = [name for key, name in structures.items() if key not in facts[case.case]["segments"]]
        facts[case.case]["missing"] = missing
        if not missing:
            kept.append(case)
        elif missingStructures == "error":
            raise ValueError(f"Case '{case.case}' lacks structure(s) {', '.join(missing)} that other cases have. "
                             "Choose: leave such cases out (missingStructures='exclude', --missing exclude) or train "
                             "with them as background there (missingStructures='background', --missing background)")
        elif missingStructures == "exclude":
            messages.append(f"case '{case.case}' left out: it lacks {', '.join(missing)}")
        else:
            case.notes.append(f"{', '.join(missing)} absent: background in this case")
            messages.append(f"case '{case.case}' trains with {', '.join(missing)} as background")
            kept.append(case)
    return kept, table, facts, messages


def splitCases(caseIds, testFraction=0.0, seed=0):
    """(training ids, test ids): the test split held out by case, seeded."""
    if not 0.0 <= float(testFraction) < 1.0:
        raise ValueError(f"testFraction must be in [0, 1), got {testFraction}")
    count = int(round(len(caseIds) * float(testFraction)))
    if testFraction and count == 0:
        count = 1
    order = np.random.default_rng(seed).permutation(len(caseIds))
    test = sorted(caseIds[index] for index in order[:count])
    return [case for case in caseIds if case not in test], test


def requireEnoughCases(trainingCount, numberOfFolds):
    if not isinstance(numberOfFolds, int) or numberOfFolds < 2:
        raise ValueError(f"numberOfFolds must be a whole number >= 2 (nnU-Net's default is 5), got {numberOfFolds!r}")
    if trainingCount < 2 * numberOfFolds:
        raise ValueError(f"{numberOfFolds} folds need at least {2 * numberOfFolds} training cases (2 per fold); the "
                         f"dataset has {trainingCount}: add cases, or ask for fewer folds")


def _labelArray(case, table, facts):
    import slicer

    shape = slicer.util.arrayFromVolume(case.volumes[0]).shape
    labels = np.zeros(shape, np.uint8 if len(table) < 256 else np.uint16)
    values = {normalizedName(name): value for name, value in table.items()}
    for key, (segmentId, _) in facts["segments"].items():
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(case.segmentation, segmentId, case.volumes[0])
        if mask is not None:
            labels[mask != 0] = values[key]
    return labels


def _writeLabelmap(scene, referenceVolume, labels, path):
    import slicer

    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "training labels")
    try:
        node.CopyOrientation(referenceVolume)
        slicer.util.updateVolumeFromArray(node, labels)
        saveVolume(node, path)
    finally:
        scene.RemoveNode(node)


def writeRawDataset(scene, rawFolder, cases, table, facts, channelNames, testIds, description):
    """Write imagesTr/labelsTr (imagesTs/labelsTs for the test split) and dataset.json into a temporary folder
    beside rawFolder, then rename it to rawFolder (which must not exist). Returns {case: {"split", "shape",
    "spacing", "voxels": {structure: count}}}."""
    parent = os.path.dirname(rawFolder)
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(rawFolder)}{TEMPORARY_MARKER}", dir=parent)
    summary = {}
    try:
        for case in cases:
            split = "Ts" if case.case in testIds else "Tr"
            for sub in (f"images{split}", f"labels{split}"):
                os.makedirs(os.path.join(temporary, sub), exist_ok=True)
            for index, volume in enumerate(case.volumes):
                saveVolume(volume, os.path.join(temporary, f"images{split}", f"{case.case}_{index:04d}{FILE_ENDING}"))
            labels = _labelArray(case, table, facts[case.case])
            _writeLabelmap(scene, case.volumes[0], labels, os.path.join(temporary, f"labels{split}",
                                                                        f"{case.case}{FILE_ENDING}"))
            counts = np.bincount(labels.ravel(), minlength=len(table) + 1)
            summary[case.case] = {"split": "test" if split == "Ts" else "training", "shape": list(labels.shape[::-1]),
                                  "spacing": [round(s, 4) for s in case.volumes[0].GetSpacing()],
                                  "voxels": {name: int(counts[value]) for name, value in table.items()}}
        datasetJson = {"channel_names": {str(i): name for i, name in enumerate(channelNames)},
                       "labels": {"background": 0, **table},
                       "numTraining": sum(1 for case in cases if case.case not in testIds),
                       "file_ending": FILE_ENDING, "description": description}
        with open(os.path.join(temporary, "dataset.json"), "w", encoding="utf-8") as file:
            json.dump(datasetJson, file, indent=2)
        os.replace(temporary, rawFolder)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    logging.info("Training dataset written to %s (%d cases)", rawFolder, len(cases))
    return summary
