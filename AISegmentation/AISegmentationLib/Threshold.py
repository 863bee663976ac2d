"""Threshold: manual range or automatic method, as Slicer's Threshold effect does it (vtkImageThreshold and
vtkITKImageThresholdCalculator)."""

import math

import slicer
import vtk

from .Geometry import binaryImage

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


def computeAutoThreshold(sourceImage, method):
    """The threshold value that `method` computes on the image."""
    if method not in AUTO_THRESHOLD_METHODS:
        raise ValueError(f"Unknown threshold method '{method}'; choose one of: {', '.join(AUTO_THRESHOLD_METHODS)}")
    calculator = slicer.vtkITKImageThresholdCalculator()
    getattr(calculator, AUTO_THRESHOLD_METHODS[method])()
    calculator.SetInputData(sourceImage)
    calculator.Update()
    return calculator.GetThreshold()


def autoThresholdRange(sourceImage, method, mode="SET_LOWER_MAX", currentRange=None):
    """Threshold range after an automatic threshold, as the effect sets it.

    SET_UPPER / SET_LOWER replace one end of currentRange (default: the image's scalar range);
    SET_MIN_UPPER gives (image minimum, threshold); SET_LOWER_MAX gives (threshold, image maximum).
    """
    if mode not in AUTO_THRESHOLD_MODES:
        raise ValueError(f"Unknown threshold mode '{mode}'; choose one of: {', '.join(AUTO_THRESHOLD_MODES)}")
    threshold = computeAutoThreshold(sourceImage, method)
    imageMin, imageMax = sourceImage.GetScalarRange()
    lower, upper = currentRange if currentRange is not None else (imageMin, imageMax)
    return {
        "SET_UPPER": (lower, threshold),
        "SET_LOWER": (threshold, upper),
        "SET_MIN_UPPER": (imageMin, threshold),
        "SET_LOWER_MAX": (threshold, imageMax),
    }[mode]


def thresholdLabelmap(sourceImage, minimum, maximum):
    """Binary labelmap of the voxels with minimum <= intensity <= maximum."""
    if minimum > maximum:
        raise ValueError(f"Threshold minimum {minimum} is above maximum {maximum}")
    if sourceImage.GetScalarType() not in (vtk.VTK_FLOAT, vtk.VTK_DOUBLE):
        # vtkImageThreshold casts fractional thresholds to the integer type (truncation): round inwards instead,
        # so that the result is exactly minimum <= value <= maximum.
        minimum, maximum = math.ceil(minimum), math.floor(maximum)
    return binaryImage(sourceImage, minimum, maximum)
