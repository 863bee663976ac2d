"""Threshold: manual range or automatic method, as Slicer's Threshold effect does it (vtkImageThreshold and
vtkITKImageThresholdCalculator).

Non-finite voxels (NaN, +Inf, -Inf in a float volume) are ignored consistently: the automatic methods, the image
minimum and maximum they use, and :func:`finiteScalarRange` see the finite voxels only, and a manual threshold
(whose bounds must be finite) never selects a non-finite voxel. A volume without any finite voxel is refused.
"""

import math

import numpy as np
import vtk
from vtk.util.numpy_support import numpy_to_vtk

from ...Geometry import arrayFromImage, binaryImage
from ...Runtime import vtkITK
from ...Validation import countNonFinite, requireRange

# Method name -> vtkITKImageThresholdCalculator setter (the 12 methods of the Threshold effect).
AUTO_THRESHOLD_METHODS = {
    "Huang": "SetMethodToHuang",
    "Intermodes": "SetMethodToIntermodes",
    "IsoData": "SetMethodToIsoData",
    "KittlerIllingworth": "SetMethodToKittlerIllingworth",
    "Li": "SetMethodToLi",
    "MaximumEntropy": "SetMethodToMaximumEntropy",
    "Moments": "SetMethodToMoments",
    "Otsu": "SetMethodToOtsu",
    "RenyiEntropy": "SetMethodToRenyiEntropy",
    "Shanbhag": "SetMethodToShanbhag",
    "Triangle": "SetMethodToTriangle",
    "Yen": "SetMethodToYen",
}

# The effect's four ways of turning the computed threshold into a range.
AUTO_THRESHOLD_MODES = ("SET_UPPER", "SET_LOWER", "SET_MIN_UPPER", "SET_LOWER_MAX")


def _finiteVoxelsImage(sourceImage):
    """sourceImage itself when all its voxels are finite, else a 1-voxel-high image of its finite voxels only
    (the histogram methods depend on the intensities, not on where they are). ValueError when none is finite."""
    scalars = sourceImage.GetPointData().GetScalars() if sourceImage is not None else None
    if scalars is None or sourceImage.GetNumberOfPoints() == 0:
        raise ValueError("The volume has no image data to threshold")
    if scalars.GetDataType() not in (vtk.VTK_FLOAT, vtk.VTK_DOUBLE):
        return sourceImage
    values = arrayFromImage(sourceImage)
    if countNonFinite(values) == 0:
        return sourceImage
    finite = np.ascontiguousarray(values[np.isfinite(values)])
    if finite.size == 0:
        raise ValueError("The volume has no finite voxels (all are NaN or infinite): nothing to threshold")
    image = vtk.vtkImageData()
    image.SetDimensions(finite.size, 1, 1)
    image.GetPointData().SetScalars(numpy_to_vtk(finite, deep=True))
    return image


def finiteScalarRange(sourceImage):
    """(minimum, maximum) of the finite voxels of an image, or None when it has none."""
    scalars = sourceImage.GetPointData().GetScalars() if sourceImage is not None else None
    if scalars is None or sourceImage.GetNumberOfPoints() == 0:
        return None
    low, high = scalars.GetFiniteRange() if scalars.GetDataType() in (vtk.VTK_FLOAT, vtk.VTK_DOUBLE) \
        else scalars.GetRange()
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        return None
    return float(low), float(high)


def computeAutoThreshold(sourceImage, method):
    """The threshold value that `method` computes on the image's finite voxels."""
    if method not in AUTO_THRESHOLD_METHODS:
        raise ValueError(f"Unknown threshold method '{method}'; choose one of: {', '.join(AUTO_THRESHOLD_METHODS)}")
    calculator = vtkITK().vtkITKImageThresholdCalculator()
    getattr(calculator, AUTO_THRESHOLD_METHODS[method])()
    calculator.SetInputData(_finiteVoxelsImage(sourceImage))
    calculator.Update()
    return calculator.GetThreshold()


def autoThresholdRange(sourceImage, method, mode="SET_LOWER_MAX", currentRange=None):
    """Threshold range after an automatic threshold, as the effect sets it.

    SET_UPPER / SET_LOWER replace one end of currentRange (default: the image's scalar range);
    SET_MIN_UPPER gives (image minimum, threshold); SET_LOWER_MAX gives (threshold, image maximum).
    Image minimum, maximum and the threshold are those of the finite voxels (NaN and infinite voxels ignored).
    """
    if mode not in AUTO_THRESHOLD_MODES:
        raise ValueError(f"Unknown threshold mode '{mode}'; choose one of: {', '.join(AUTO_THRESHOLD_MODES)}")
    if currentRange is not None:
        currentRange = requireRange("currentRange (threshold range to update)", currentRange)
    threshold = computeAutoThreshold(sourceImage, method)
    imageMin, imageMax = finiteScalarRange(sourceImage)
    # ITK's calculators leave the threshold unset when they fail (e.g. Li or Triangle on a constant image): a value
    # outside the intensity range (beyond one histogram bin of slack) is no threshold.
    slack = (imageMax - imageMin) / 256
    if not (math.isfinite(threshold) and imageMin - slack <= threshold <= imageMax + slack):
        raise ValueError(f"Automatic threshold '{method}' found no threshold within the intensity range "
                         f"[{imageMin:g}, {imageMax:g}] of this volume (got {threshold:g}); try another method")
    lower, upper = currentRange if currentRange is not None else (imageMin, imageMax)
    return {
        "SET_UPPER": (lower, threshold),
        "SET_LOWER": (threshold, upper),
        "SET_MIN_UPPER": (imageMin, threshold),
        "SET_LOWER_MAX": (threshold, imageMax),
    }[mode]


def thresholdLabelmap(sourceImage, minimum, maximum):
    """Binary labelmap of the voxels with minimum <= intensity <= maximum (finite bounds).

    NaN voxels are never selected (vtkImageThreshold's comparisons are false for NaN), nor are infinite voxels
    (the bounds are finite).
    """
    minimum, maximum = requireRange("Threshold range (minimum, maximum)", (minimum, maximum))
    if sourceImage.GetScalarType() not in (vtk.VTK_FLOAT, vtk.VTK_DOUBLE):
        # vtkImageThreshold casts fractional thresholds to the integer type (truncation): round inwards instead,
        # so that the result is exactly minimum <= value <= maximum.
        minimum, maximum = math.ceil(minimum), math.floor(maximum)
    return binaryImage(sourceImage, minimum, maximum)
