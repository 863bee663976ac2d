"""Reading a backend's result back: the label map (validated against the input volume's grid) and its names.

Nothing here touches the scene; the Logic writes the validated arrays through the segment editor logic.
"""

import json

import numpy as np
import vtk

TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMY_CONTEXT = "Anatomic codes - DICOM master list"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
TERMINOLOGY_FIELDS = ("category", "type", "typeModifier", "region", "regionModifier")
MAX_LABEL_VALUE = 2**31 - 1
MAX_NAME_LENGTH = 256
FORBIDDEN_IN_CODES = "~^"  # separators of Slicer's terminology tag


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
        if array.size and not (0 <= array.min() and array.max() <= MAX_LABEL_VALUE):
            raise RuntimeError(f"The backend returned a label map with values outside 0..{MAX_LABEL_VALUE} "
                               f"({array.min():g}..{array.max():g})")
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
            data = json.load(file)
    except (OSError, ValueError) as error:
        raise RuntimeError(f"The backend's label names '{path}' are missing or malformed ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("labels"), dict):
        raise RuntimeError(f"The backend's label names '{path}' are malformed: no \"labels\" table")
    return validateLabelTable(data["labels"], path)


def validateLabelTable(labels, source="the backend"):
    """Checked copy of a backend's label table {value: entry}; RuntimeError naming the label for any bad field.

    Values are integers 0..2^31-1 (written as JSON keys); names are unique, non-empty strings; a colour is three
    integers 0..255 or absent; terminology codes are up to three strings (scheme, value, meaning) or absent.
    """
    if not isinstance(labels, dict):
        raise RuntimeError(f"The label table from {source} is not a table of label values ({type(labels).__name__})")
    entries, names = {}, {}
    for key, entry in labels.items():
        value = _labelValue(key, source)
        if value in entries:
            raise RuntimeError(f"The label table from {source} lists label {value} twice")
        if not isinstance(entry, dict):
            raise RuntimeError(f"Label {value} from {source} is not a table of name, colour and codes: {entry!r:.80}")
        entries[value] = checked = dict(entry)
        checked["name"] = _labelName(entry.get("name"), value, source)
        if checked["name"] in names:
            raise RuntimeError(f"Labels {names[checked['name']]} and {value} from {source} have the same name "
                               f"'{checked['name']}'")
        names[checked["name"]] = value
        if entry.get("color") is not None:
            checked["color"] = _labelColor(entry["color"], value, source)
        for field in TERMINOLOGY_FIELDS:
            if entry.get(field) is not None:
                checked[field] = _labelCode(entry[field], field, value, source)
    return entries


def _labelValue(key, source):
    text = key.strip() if isinstance(key, str) else key
    try:
        if isinstance(text, bool) or isinstance(text, float):
            raise ValueError
        value = int(text)
    except (TypeError, ValueError):
        raise RuntimeError(f"The label table from {source} has a label value {key!r} that is not an integer") from None
    if not 0 <= value <= MAX_LABEL_VALUE:
        raise RuntimeError(f"The label table from {source} has label value {value}, outside 0..{MAX_LABEL_VALUE}")
    return value


def _labelName(name, value, source):
    if not isinstance(name, str) or not name.strip():
        raise RuntimeError(f"The backend gave label {value} no name ({source}: name {name!r:.80})")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH or any(ord(character) < 32 for character in name):
        raise RuntimeError(f"Label {value} from {source} has a name that is too long or holds control characters: "
                           f"{name!r:.80}")
    return name


def _labelColor(color, value, source):
    channels = list(color) if isinstance(color, (list, tuple)) else None
    if (channels is None or len(channels) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in channels)):
        raise RuntimeError(f"Label {value} from {source} has a malformed colour {color!r:.80}: expected three "
                           f"integers 0..255 (red, green, blue)")
    return channels


def _labelCode(code, field, value, source):
    parts = list(code) if isinstance(code, (list, tuple)) else None
    if (parts is None or len(parts) > 3 or not all(isinstance(part, str) for part in parts)
            or any(character in part for part in parts for character in FORBIDDEN_IN_CODES)):
        raise RuntimeError(f"Label {value} from {source} has a malformed terminology code '{field}' {code!r:.80}: "
                           f"expected up to three strings (scheme, value, meaning) without {FORBIDDEN_IN_CODES}")
    return parts


def _code(triple):
    scheme, value, meaning = (list(triple or []) + ["", "", ""])[:3]
    return f"{scheme}^{value}^{meaning}"


def terminologyEntry(entry):
    """Slicer's TerminologyEntry tag value for a label entry with DICOM codes, or None without codes."""
    if not entry.get("type") or len(entry["type"]) < 2 or not entry["type"][1]:
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
