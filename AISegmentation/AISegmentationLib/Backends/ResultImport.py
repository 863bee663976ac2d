"""Reading a backend's result back: the label map (validated against the input volume's grid) and its names.

Nothing here touches the scene; the Logic writes the validated arrays through the segment editor logic.
"""

import json

import numpy as np
import vtk

TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def _volumeIjkToRas(volumeNode):
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(3)])


def readLabelmap(path, volumeNode):
    """KJI integer array of a label-map file; RuntimeError unless its grid is exactly the volume's."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(path)
    except RuntimeError as error:
        raise RuntimeError(f"The backend's label map '{path}' could not be read ({error})") from None
    array = sitk.GetArrayFromImage(image)
    expected = tuple(volumeNode.GetImageData().GetDimensions())[::-1]
    if array.ndim != 3 or array.shape != expected:
        raise RuntimeError(f"The backend returned a label map of shape {array.shape}, the volume has {expected}")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise RuntimeError("The backend returned a label map with non-integer values")
        array = array.astype(np.int32)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    linear = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    origin = LPS_TO_RAS @ np.array(image.GetOrigin())
    expectedMatrix = _volumeIjkToRas(volumeNode)
    if not (np.allclose(linear, expectedMatrix[:, :3], rtol=1e-4, atol=1e-4)
            and np.allclose(origin, expectedMatrix[:, 3], rtol=1e-5, atol=1e-3)):
        raise RuntimeError("The backend returned a label map whose geometry (spacing, origin or directions) differs "
                           "from the input volume")
    return array


def readLabelNames(path):
    """{label value: {"name", optional "color" (0..255), terminology codes}} from the backend's label JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            labels = json.load(file)["labels"]
        entries = {int(value): dict(entry) for value, entry in labels.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RuntimeError(f"The backend's label names '{path}' are missing or malformed ({error})") from None
    for value, entry in entries.items():
        if not str(entry.get("name", "")).strip():
            raise RuntimeError(f"The backend gave label {value} no name")
    return entries


def _code(triple):
    scheme, value, meaning = (list(triple or []) + ["", "", ""])[:3]
    return f"{scheme}^{value}^{meaning}"


def terminologyEntry(entry):
    """Slicer's TerminologyEntry tag value for a label entry with DICOM codes, or None without codes."""
    if not entry.get("type") or not entry["type"][1]:
        return None
    return "~".join([TERMINOLOGY_CONTEXT, _code(entry.get("category")), _code(entry.get("type")),
                     _code(entry.get("typeModifier")), ANATOMY_CONTEXT, _code(entry.get("region")),
                     _code(entry.get("regionModifier"))])


def presentLabels(array, names):
    """Sorted non-zero label values in array; RuntimeError for a value without a name."""
    present = [int(value) for value in np.unique(array) if value != 0]
    unnamed = [value for value in present if value not in names]
    if unnamed:
        raise RuntimeError(f"The backend's label map has values without names: {unnamed[:10]}")
    return present


def boundingBox(mask):
    """(slices in KJI) of the non-zero part of mask, or None when it is empty."""
    bounds = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        indices = np.flatnonzero(mask.any(axis=other))
        if indices.size == 0:
            return None
        bounds.append(slice(int(indices[0]), int(indices[-1]) + 1))
    return tuple(bounds)
