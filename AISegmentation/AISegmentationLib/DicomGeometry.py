"""Is a DICOM series folder one whole, evenly spaced stack of slices?

Slicer's series reader sorts the slices and takes an average slice spacing: with a slice missing (or a varying
spacing) every distance and volume measured on the result is wrong, with only a warning in the log. Here each
slice's ImagePositionPatient (0020,0032) is projected on the slice normal from ImageOrientationPatient (0020,0037);
the gaps between consecutive slices must be equal within SPACING_TOLERANCE_MM (or SPACING_TOLERANCE_FRACTION of
the spacing, whichever is larger). An uneven series is refused with the slices named, unless the caller accepts
it knowingly: then the loaded volume is resampled onto a regular grid along the slice axis (linear interpolation
between the two nearest acquired slices, as hardening Slicer's acquisition transform does) and the volume node
says so in its attributes.
"""

import logging
import os

import numpy as np

SPACING_TOLERANCE_MM = 0.01
SPACING_TOLERANCE_FRACTION = 0.001
ORIENTATION_TOLERANCE = 1e-4
IRREGULAR_SPACING_ATTRIBUTE = "AISegmentation.irregularSpacing"
SLICE_POSITIONS_ATTRIBUTE = "AISegmentation.acquiredSlicePositionsMm"
MAX_NAMED_SLICES = 4


def _tags(path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
        position = [float(v) for v in reader.GetMetaData("0020|0032").split("\\")]
        orientation = [float(v) for v in reader.GetMetaData("0020|0037").split("\\")]
        series = reader.GetMetaData("0020|000e").strip() if reader.HasMetaDataKey("0020|000e") else ""
    except (RuntimeError, ValueError) as error:
        logging.debug("No slice position in %s: %s", path, error)
        raise ValueError(f"'{path}' is not a DICOM image slice with a position and orientation "
                         f"(ImagePositionPatient, ImageOrientationPatient)") from None
    if len(position) != 3 or len(orientation) != 6:
        raise ValueError(f"'{path}' has a malformed ImagePositionPatient / ImageOrientationPatient")
    return np.array(position), np.array(orientation), series, reader.GetSize()[:2]


class SliceStack:
    """Slices of one series sorted along the slice normal: files, positions (mm along the normal), spacing."""

    def __init__(self, folder, files):
        self.folder = folder
        tags = [_tags(path) for path in files]
        series = sorted({t[2] for t in tags})
        if len(series) > 1:
            raise ValueError(f"DICOM folder '{folder}' holds {len(series)} series ({', '.join(series[:3])}...): "
                             f"give a folder with the slices of one series")
        orientation = tags[0][1]
        for path, tag in zip(files, tags):
            if not np.allclose(tag[1], orientation, atol=ORIENTATION_TOLERANCE) or tag[3] != tags[0][3]:
                raise ValueError(f"DICOM folder '{folder}': slice '{os.path.basename(path)}' has another orientation "
                                 f"or size than '{os.path.basename(files[0])}'")
        normal = np.cross(orientation[:3], orientation[3:])
        if not np.isclose(np.linalg.norm(normal), 1.0, atol=1e-3):
            raise ValueError(f"DICOM folder '{folder}': ImageOrientationPatient {orientation.tolist()} is not two "
                             f"orthogonal unit vectors")
        self.normal = normal
        positions = np.array([float(np.dot(tag[0], normal)) for tag in tags])
        order = np.argsort(positions, kind="stable")
        self.files = [files[i] for i in order]
        self.positions = positions[order]
        self.gaps = np.diff(self.positions)

    def names(self, index):
        return f"'{os.path.basename(self.files[index])}' ({self.positions[index]:.3f} mm)"

    def duplicates(self):
        return [i for i, gap in enumerate(self.gaps) if gap < SPACING_TOLERANCE_MM]

    def spacing(self):
        """The regular spacing: the most common gap (the median), what the series was meant to have."""
        return float(np.median(self.gaps)) if len(self.gaps) else 0.0

    def irregularGaps(self):
        spacing = self.spacing()
        tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE_FRACTION * spacing)
        return [i for i, gap in enumerate(self.gaps) if abs(gap - spacing) > tolerance]

    def describeIrregularity(self):
        irregular = self.irregularGaps()
        pairs = "; ".join(f"{self.gaps[i]:.3f} mm between {self.names(i)} and {self.names(i + 1)}"
                          for i in irregular[:MAX_NAMED_SLICES])
        more = f" and {len(irregular) - MAX_NAMED_SLICES} more" if len(irregular) > MAX_NAMED_SLICES else ""
        return (f"{len(self.files)} slices, spacing {self.spacing():.3f} mm except {pairs}{more} "
                f"(a missing slice or a varying spacing)")


def seriesFiles(folder):
    """The files of a DICOM series folder (hidden files left out), sorted by name; ValueError when there are none."""
    files = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if os.path.isfile(os.path.join(folder, name)) and not name.startswith("."))
    if not files:
        raise ValueError(f"DICOM folder '{folder}' contains no files")
    return files


def checkSeries(folder, files, acceptIrregularSpacing=False):
    """The sorted SliceStack of a series folder. ValueError when two slices share a position, or when the spacing
    is uneven and acceptIrregularSpacing is False (the message names the slices)."""
    stack = SliceStack(folder, files)
    duplicates = stack.duplicates()
    if duplicates:
        i = duplicates[0]
        raise ValueError(f"DICOM folder '{folder}': slices {stack.names(i)} and {stack.names(i + 1)} lie at the "
                         f"same position (a repeated slice or two series mixed)")
    if stack.irregularGaps() and not acceptIrregularSpacing:
        raise ValueError(f"DICOM folder '{folder}' is not evenly spaced: {stack.describeIrregularity()}. Its "
                         f"distances and volumes would be wrong. To load it anyway, resampled onto a regular grid, "
                         f"pass acceptIrregularSpacing=True (command line: --accept-irregular-spacing)")
    return stack


def resampleOntoRegularGrid(volumeNode, stack):
    """Resample a loaded series (slices in sorted order along its K axis) onto a regular grid at the series'
    regular spacing, by linear interpolation between the two nearest acquired slices; records what was done in
    the node's attributes. Does nothing when the stack is evenly spaced."""
    import slicer

    if not stack.irregularGaps():
        return volumeNode
    array = slicer.util.arrayFromVolume(volumeNode)
    if array.shape[0] != len(stack.files):
        raise RuntimeError(f"The loaded series has {array.shape[0]} slices, the folder {len(stack.files)}")
    distances = _distancesAlongK(volumeNode, stack)
    spacing = stack.spacing()
    count = int(round(distances[-1] / spacing)) + 1
    spacing = distances[-1] / (count - 1)
    resampled = np.empty((count,) + array.shape[1:], array.dtype)
    for index in range(count):
        target = index * spacing
        upper = int(np.clip(np.searchsorted(distances, target), 1, len(distances) - 1))
        weight = (target - distances[upper - 1]) / (distances[upper] - distances[upper - 1])
        value = (1 - weight) * array[upper - 1].astype(np.float64) + weight * array[upper]
        resampled[index] = np.rint(value) if np.issubdtype(array.dtype, np.integer) else value
    spacingIjk = list(volumeNode.GetSpacing())
    description = (f"acquired {stack.describeIrregularity()}; resampled onto {count} slices at {spacing:.4f} mm "
                   f"by linear interpolation along the slice axis")
    slicer.util.updateVolumeFromArray(volumeNode, resampled)
    volumeNode.SetSpacing(spacingIjk[0], spacingIjk[1], spacing)
    volumeNode.SetAttribute(IRREGULAR_SPACING_ATTRIBUTE, description)
    volumeNode.SetAttribute(SLICE_POSITIONS_ATTRIBUTE, ",".join(f"{p:.4f}" for p in stack.positions))
    logging.warning("DICOM series %s: %s", stack.folder, description)
    return volumeNode


def _distancesAlongK(volumeNode, stack):
    """Distance of each loaded K slice from the first one, from the acquired positions: the reader stacks the
    sorted slices ascending or descending along the normal; which one is read from the node's geometry."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    kAxisLps = np.array([-matrix.GetElement(0, 2), -matrix.GetElement(1, 2), matrix.GetElement(2, 2)])
    originLps = np.array([-matrix.GetElement(0, 3), -matrix.GetElement(1, 3), matrix.GetElement(2, 3)])
    normal = stack.normal
    ascending = float(np.dot(kAxisLps, normal)) > 0
    positions = stack.positions if ascending else stack.positions[::-1]
    first = float(np.dot(originLps, normal))
    if abs(first - positions[0]) > max(1e-2, 0.01 * stack.spacing()):
        raise RuntimeError(f"The loaded series starts at {first:.3f} mm along its normal, its first slice lies at "
                           f"{positions[0]:.3f} mm: cannot resample it")
    return np.abs(positions - positions[0])

