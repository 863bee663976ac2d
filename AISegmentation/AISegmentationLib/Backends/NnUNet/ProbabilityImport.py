"""nnU-Net's class probabilities into the scene: one float volume per class (0: background), read from the files the
child wrote beside the label map (probabilities_<value>.nii.gz), checked to lie on the input volume's grid, named
after the classes and referenced by the segmentation node (ResultExtras.PROBABILITIES_REFERENCE)."""

import os

import numpy as np
import slicer

from ...Geometry import sameGeometry, volumeImage
from ...VolumeIO import _addArchetypeVolume
from ..Jobs.ResultExtras import PROBABILITIES_REFERENCE


def importProbabilities(scene, segmentationNode, reference, request):
    """The probability volume nodes (added to the scene; all removed again on an error)."""
    names = {0: "background", **{int(value): name for value, name in (request.get("labelNames") or {}).items()}}
    folder = os.path.dirname(request["outputLabelmap"])
    volumesLogic = slicer.modules.volumes.logic()
    nodes = []
    try:
        for value in sorted(names):
            path = os.path.join(folder, f"probabilities_{value}.nii.gz")
            if not os.path.isfile(path):
                raise RuntimeError(f"nnU-Net wrote no probability map for class {value} ('{names[value]}')")
            node = _addArchetypeVolume(volumesLogic, path, f"{segmentationNode.GetName()} P({names[value]})", 0, None)
            if node is None:
                raise RuntimeError(f"Could not read the probability map '{path}'")
            nodes.append(node)
            if not sameGeometry(volumeImage(reference), volumeImage(node)):
                raise RuntimeError(f"The probability map of '{names[value]}' is not on the input volume's grid")
            values = slicer.util.arrayFromVolume(node)
            if values.size and (values.min() < -1e-4 or values.max() > 1 + 1e-4 or not np.isfinite(values).all()):
                raise RuntimeError(f"The probability map of '{names[value]}' holds values outside [0, 1]")
            node.SetAttribute("AISegmentation.probabilityOf", names[value])
            if node.GetStorageNode() is not None:
                scene.RemoveNode(node.GetStorageNode())  # the file is in the job's temporary folder
        for node in nodes:
            segmentationNode.AddNodeReferenceID(PROBABILITIES_REFERENCE, node.GetID())
    except BaseException:
        for node in nodes:
            scene.RemoveNode(node)
        raise
    return nodes
