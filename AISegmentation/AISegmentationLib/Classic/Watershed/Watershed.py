"""Watershed from markers on the gradient magnitude, the numeric core of the Watershed tool (SimpleITK images and
numpy arrays only, no MRML).

As SegmentEditorExtraEffects' Watershed effect: the intensity image is smoothed and differentiated with a recursive
Gaussian of sigma = the object scale (mm, the image spacing is used), and SimpleITK's morphological watershed floods
that gradient magnitude from the labelled markers; every voxel of the region ends in the basin of one marker.
"""

import numpy as np
import SimpleITK as sitk

MINIMUM_MARGIN_VOXELS = 3
MARGIN_RATIO = 0.2  # of the markers' extent on each axis, as grow from seeds crops


def sitkImage(arrayKji, spacingIjk, pixelType=sitk.sitkFloat32):
    """SimpleITK image of a KJI numpy array with the spacing (mm, IJK order); origin and directions stay at the
    identity: the filters here need only the spacing."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(arrayKji))
    image.SetSpacing([float(s) for s in spacingIjk])
    return sitk.Cast(image, pixelType)


def markerBox(markerLabels, shape):
    """KJI box ((lo, hi) per axis, hi exclusive) of the nonzero markers plus a margin (20 % of their extent, at
    least 3 voxels), clipped to shape."""
    nonzero = np.argwhere(markerLabels)
    low, high = nonzero.min(axis=0), nonzero.max(axis=0) + 1
    margin = np.maximum(MINIMUM_MARGIN_VOXELS, (MARGIN_RATIO * (high - low)).astype(int))
    return tuple((int(max(0, lo - m)), int(min(n, hi + m))) for lo, hi, m, n in zip(low, high, margin, shape))


def watershedFromMarkers(intensity, markers, objectScaleMm):
    """Label image (markers' pixel type): each voxel carries the label of the marker whose basin holds it.

    intensity: a scalar SimpleITK image; markers: an unsigned integer image on the same grid, 0 = unlabelled;
    objectScaleMm: sigma of the gradient's Gaussian (> 0), in the image's spacing units."""
    if not objectScaleMm > 0:
        raise ValueError(f"objectScaleMm (gradient smoothing) must be above 0 mm, got {objectScaleMm}")
    gradient = sitk.GradientMagnitudeRecursiveGaussian(sitk.Cast(intensity, sitk.sitkFloat32),
                                                       sigma=float(objectScaleMm))
    return sitk.MorphologicalWatershedFromMarkers(gradient, markers, markWatershedLine=False, fullyConnected=False)


def watershedArray(intensityKji, markerLabelsKji, spacingIjk, objectScaleMm):
    """(labels, box): the watershed of the markers' box (markerBox) of a KJI intensity array; labels is the KJI
    uint16 label array of that box (values of markerLabelsKji), box its KJI (lo, hi) per axis."""
    box = markerBox(markerLabelsKji, intensityKji.shape)
    crop = tuple(slice(lo, hi) for lo, hi in box)
    intensity = sitkImage(intensityKji[crop], spacingIjk)
    markers = sitkImage(markerLabelsKji[crop], spacingIjk, sitk.sitkUInt16)
    labels = watershedFromMarkers(intensity, markers, objectScaleMm)
    return sitk.GetArrayFromImage(labels), box
