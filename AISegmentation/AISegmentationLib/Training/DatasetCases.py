"""The cases of a training dataset, from what a clinician has: volumes and segmentations in the scene, a cohort
manifest (``case,image,reference`` as for ``batch``) or a folder (Manifest.py's conventions).

Every source becomes the same :class:`TrainingCase` list (volume nodes per channel + a segmentation node), so the
checks and the writing are one code path (DatasetBuilder). Files are loaded into the scene; the caller removes what
was added (VolumeIO.removeNodesAddedSince). A case with an image and no reference, or a label-map file with
non-integer voxel values, is a ValueError naming the case.
"""

import json
import os
import re
from dataclasses import dataclass, field

import numpy as np

from ..Manifest import readManifest, requireCaseId
from ..SegmentationIO import labelNamesPath
from ..VolumeIO import _nodeIds, loadVolume, removeNodesAddedSince


@dataclass
class TrainingCase:
    case: str
    volumes: list  # volume nodes, one per channel, on one grid
    segmentation: object  # vtkMRMLSegmentationNode
    source: str = "scene"
    notes: list = field(default_factory=list)


def casesFromScene(cases):
    """TrainingCase list from [{"case": id, "volumes": node or [nodes], "segmentation": node}],
    [(volume(s), segmentation)] (ids case_000, case_001, ... then) or segmentation nodes alone (the volume each was
    made on, its reference geometry; the id from its name)."""
    result = []
    for index, entry in enumerate(cases or []):
        if isinstance(entry, TrainingCase):
            result.append(entry)
            continue
        if hasattr(entry, "GetSegmentation"):
            volumes = entry.GetNodeReference(entry.GetReferenceImageGeometryReferenceRole())
            if volumes is None:
                raise ValueError(f"Segmentation '{entry.GetName()}' names no volume it was made on: give its case "
                                 "as (volume, segmentation)")
            caseId, segmentation = re.sub(r"[^A-Za-z0-9_.-]+", "_", entry.GetName()).strip("._-"), entry
        elif isinstance(entry, dict):
            caseId, volumes, segmentation = entry.get("case"), entry.get("volumes"), entry.get("segmentation")
        else:
            volumes, segmentation = entry
            caseId = None
        caseId = caseId or f"case_{index:03d}"
        volumes = list(volumes) if isinstance(volumes, (list, tuple)) else [volumes]
        result.append(TrainingCase(str(caseId), volumes, segmentation))
    return result


def _labelTable(path):
    namesPath = labelNamesPath(path)
    if not os.path.isfile(namesPath):
        return None
    with open(namesPath, encoding="utf-8") as file:
        return {int(value): name for value, name in json.load(file).items()}


def requireIntegerLabelmap(runtime, path, caseId):
    """ValueError when the label-map file holds non-integer voxel values (read as a plain scalar volume)."""
    import slicer

    scene = runtime.scene
    before = _nodeIds(scene)
    try:
        node = loadVolume(runtime, path)
        array = slicer.util.arrayFromVolume(node)
        if not np.issubdtype(array.dtype, np.integer) and not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"Case '{caseId}': the label map '{path}' is not integer (it holds values such as "
                             f"{float(array[np.mod(array, 1) != 0].flat[0]):g}); give a label map of whole numbers")
    finally:
        removeNodesAddedSince(scene, before)


def casesFromManifest(runtime, source, loadSegmentation, importLabelmap):
    """TrainingCase list from a CSV manifest or a folder; loads every image and reference into the scene.
    loadSegmentation(path, name) and importLabelmap(path, names, referenceVolume, name): the facade's loaders."""
    cases = readManifest(source)
    withoutReference = [case["case"] for case in cases if not case.get("reference")]
    if withoutReference:
        raise ValueError(f"Case(s) {', '.join(withoutReference[:5])} of '{source}' have an image and no label map "
                         "(reference): every training case needs one")
    for case in cases:
        for path in case["images"] + [case["reference"]]:
            if not os.path.exists(path):
                raise ValueError(f"Case '{case['case']}': '{path}' does not exist")
        if not case["reference"].lower().endswith(".seg.nrrd"):
            requireIntegerLabelmap(runtime, case["reference"], case["case"])
    result = []
    for case in cases:
        volumes = [loadVolume(runtime, path, name=f"{case['case']}_{index:04d}")
                   for index, path in enumerate(case["images"])]
        reference = case["reference"]
        if reference.lower().endswith(".seg.nrrd"):
            segmentation = loadSegmentation(reference, f"{case['case']} reference")
        else:
            segmentation = importLabelmap(reference, _labelTable(reference), volumes[0], f"{case['case']} reference")
        result.append(TrainingCase(case["case"], volumes, segmentation, source=reference))
    return result


def requireCaseIds(cases):
    seen = {}
    for case in cases:
        requireCaseId(case.case, "the training dataset")
        other = seen.setdefault(case.case.lower(), case.case)
        if other != case.case or sum(1 for c in cases if c.case == case.case) > 1:
            raise ValueError(f"Case id '{case.case}' is given twice (ids must differ, also ignoring upper/lower case)")
