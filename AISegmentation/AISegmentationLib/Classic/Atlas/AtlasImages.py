"""The atlas tool's MRML side of its inputs: volume nodes and label maps as SimpleITK images (LPS, with the
volume's linear parent transform), read on the caller's thread before the registration starts, and checked."""

import numpy as np
import SimpleITK as sitk
import slicer

from ...Geometry import ijkToRasMatrix
from ...SegmentationIO import readLabelNames, segmentationLabelArray
from ...Validation import countNonFinite
from .Fusion import OUTSIDE

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def volumeToImage(volumeNode, what):
    """SimpleITK image of a scalar volume node's voxels and geometry; ValueError for NaN or infinite voxels."""
    if volumeNode is None or volumeNode.GetImageData() is None:
        raise ValueError(f"The {what} has no image data")
    array = slicer.util.arrayFromVolume(volumeNode)
    nonFinite = countNonFinite(array)
    if nonFinite:
        raise ValueError(f"The {what} '{volumeNode.GetName()}' has {nonFinite} NaN or infinite voxels: replace them "
                         "with finite values first; nothing was changed")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    matrix = ijkToRasMatrix(volumeNode)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    direction = RAS_TO_LPS @ (matrix[:3, :3] / spacing)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in direction.ravel()])
    image.SetOrigin([float(v) for v in RAS_TO_LPS @ matrix[:3, 3]])
    return image


def _sameGrid(imageA, imageB):
    return (imageA.GetSize() == imageB.GetSize()
            and np.allclose(imageA.GetSpacing(), imageB.GetSpacing(), atol=1e-3)
            and np.allclose(imageA.GetOrigin(), imageB.GetOrigin(), atol=1e-2)
            and np.allclose(imageA.GetDirection(), imageB.GetDirection(), atol=1e-4))


def _colorNames(labelmapNode, values):
    display = labelmapNode.GetDisplayNode()
    colorNode = display.GetColorNode() if display is not None else None
    if colorNode is None or not labelmapNode.IsA("vtkMRMLLabelMapVolumeNode"):
        return {}
    return {value: colorNode.GetColorName(value) for value in values if colorNode.GetColorName(value)}


def atlasLabels(imageNode, labelsNode, image, labelNames=None):
    """(UInt16 label image on the atlas image's grid, {value: name}) of a label map volume (on the image's grid) or
    a segmentation node (resampled onto it); ValueError when the grids differ or no structure is labelled."""
    what = f"atlas '{imageNode.GetName()}'"
    if labelsNode is None:
        raise ValueError(f"The {what} has no label map or segmentation")
    if labelsNode.IsA("vtkMRMLSegmentationNode"):
        array, names = segmentationLabelArray(labelsNode, imageNode)
        labels = sitk.GetImageFromArray(array.astype(np.uint16))
        labels.CopyInformation(image)
    else:
        labels = volumeToImage(labelsNode, f"label map of the {what}")
        if not _sameGrid(labels, image):
            raise ValueError(
                f"The label map '{labelsNode.GetName()}' of the {what} is not on its image's grid (label map: size "
                f"{labels.GetSize()}, spacing {tuple(round(s, 3) for s in labels.GetSpacing())}, origin "
                f"{tuple(round(o, 2) for o in labels.GetOrigin())}; image: size {image.GetSize()}, spacing "
                f"{tuple(round(s, 3) for s in image.GetSpacing())}, origin {tuple(round(o, 2) for o in image.GetOrigin())}"
                "); resample it onto the image first. Nothing was changed.")
        array = sitk.GetArrayViewFromImage(labels)
        if array.min() < 0 or array.max() >= OUTSIDE or not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError(f"The label map '{labelsNode.GetName()}' of the {what} must hold whole numbers "
                             f"0..{OUTSIDE - 1}")
        labels = sitk.Cast(labels, sitk.sitkUInt16)
        values = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(labels)) if v != 0]
        names = _colorNames(labelsNode, values)
    names.update(readLabelNames(labelNames))
    values = [int(v) for v in np.unique(sitk.GetArrayViewFromImage(labels)) if v != 0]
    if not values:
        raise ValueError(f"The label map of the {what} is empty: it labels no structure. Nothing was changed.")
    return labels, {value: names.get(value) or f"Label {value}" for value in values}


def atlasPairs(volumes):
    """[(image node, labels node)] from pairs, or from a flat list image, labels, image, labels..."""
    volumes = list(volumes or [])
    if not volumes:
        raise ValueError("Atlas segmentation needs at least one atlas (an image and its label map or segmentation); "
                         "none was given. Nothing was changed.")
    if all(isinstance(item, (tuple, list)) for item in volumes):
        pairs = [tuple(item) for item in volumes]
    else:
        if len(volumes) % 2:
            raise ValueError(f"Atlases are given as image, labels, image, labels...: got {len(volumes)} volumes")
        pairs = list(zip(volumes[0::2], volumes[1::2]))
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("Each atlas is a pair (image volume, label map volume or segmentation)")
    return pairs
