"""Geodesic active contour (a level set), the numeric core of the Active contour tool (SimpleITK images and numpy
arrays only, no MRML).

The speed image is a sigmoid of the gradient magnitude (recursive Gaussian of sigma = the edge scale, mm): about 1
where the gradient is well below the edge strength, about 0 on stronger edges. The initial level set is the signed
distance (mm) of the starting mask, negative inside, shifted by half the smallest voxel spacing so that the zero level
runs between the mask's border voxels and their outside neighbours. SimpleITK's
GeodesicActiveContourLevelSetImageFilter moves it: propagation (> 0 expands, < 0 shrinks, both slowed by edges),
curvature (smoothness) and advection (attraction to the edges); the result is where the level set is negative.
"""

import numpy as np
import SimpleITK as sitk

MINIMUM_MARGIN_VOXELS = 5
MARGIN_RATIO = 0.25  # of the mask's extent on each axis: room for the contour to move
EDGE_STRENGTH_PERCENTILE = 90  # automatic edge strength: this percentile of the region's gradient magnitude
SIGMOID_WIDTH = 0.25  # of the edge strength: how sharply the speed falls around it


def sitkImage(arrayKji, spacingIjk, pixelType=sitk.sitkFloat32):
    """SimpleITK image of a KJI numpy array with the spacing (mm, IJK order); origin and directions stay at the
    identity: the filters here need only the spacing."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(arrayKji))
    image.SetSpacing([float(s) for s in spacingIjk])
    return sitk.Cast(image, pixelType)


def maskBox(mask, shape, reach=0):
    """KJI box ((lo, hi) per axis, hi exclusive) of a nonzero mask plus a margin (25 % of its extent, at least 5
    voxels, at least reach), clipped to shape. The contour cannot leave this box."""
    nonzero = np.argwhere(mask)
    low, high = nonzero.min(axis=0), nonzero.max(axis=0) + 1
    margin = np.maximum(max(MINIMUM_MARGIN_VOXELS, int(reach)), (MARGIN_RATIO * (high - low)).astype(int))
    return tuple((int(max(0, lo - m)), int(min(n, hi + m))) for lo, hi, m, n in zip(low, high, margin, shape))


def speedImage(intensity, edgeScaleMm, edgeStrength=None):
    """(speed, edgeStrength used): sigmoid of the gradient magnitude, 1 in flat regions, 0 on strong edges.
    edgeStrength (intensity units per mm) is where the speed is one half; None: the 90th percentile of the
    gradient magnitude in the image."""
    gradient = sitk.GradientMagnitudeRecursiveGaussian(sitk.Cast(intensity, sitk.sitkFloat32),
                                                       sigma=float(edgeScaleMm))
    if edgeStrength is None:
        edgeStrength = float(np.percentile(sitk.GetArrayViewFromImage(gradient), EDGE_STRENGTH_PERCENTILE))
        edgeStrength = max(edgeStrength, 1e-6)  # a flat image: every edge counts
    alpha = -SIGMOID_WIDTH * edgeStrength
    speed = sitk.Sigmoid(gradient, alpha=alpha, beta=float(edgeStrength), outputMaximum=1.0, outputMinimum=0.0)
    return sitk.Cast(speed, sitk.sitkFloat32), edgeStrength


def initialLevelSet(mask):
    """Signed distance (mm) of a 0/1 SimpleITK mask: negative inside, zero half a voxel outside its border."""
    distance = sitk.SignedMaurerDistanceMap(sitk.Cast(mask, sitk.sitkUInt8), insideIsPositive=False,
                                            squaredDistance=False, useImageSpacing=True)
    return sitk.Cast(distance, sitk.sitkFloat32) - 0.5 * min(mask.GetSpacing())


def geodesicActiveContour(intensity, mask, propagation, curvature, advection, iterations, edgeScaleMm,
                          edgeStrength=None):
    """(result mask as a uint8 SimpleITK image, {"edgeStrength", "iterations", "rmsChange"}) of the contour started
    from mask (0/1, intensity's grid) after the given number of iterations (it may stop earlier once converged)."""
    speed, edgeStrength = speedImage(intensity, edgeScaleMm, edgeStrength)
    contour = sitk.GeodesicActiveContourLevelSetImageFilter()
    contour.SetPropagationScaling(float(propagation))
    contour.SetCurvatureScaling(float(curvature))
    contour.SetAdvectionScaling(float(advection))
    contour.SetNumberOfIterations(int(iterations))
    contour.SetMaximumRMSError(1e-4)
    levelSet = contour.Execute(initialLevelSet(mask), speed)
    info = {"edgeStrength": edgeStrength, "iterations": contour.GetElapsedIterations(),
            "rmsChange": contour.GetRMSChange()}
    return sitk.Cast(levelSet < 0, sitk.sitkUInt8), info


def activeContourArray(intensityKji, maskKji, spacingIjk, propagation, curvature, advection, iterations, edgeScaleMm,
                       edgeStrength=None):
    """(result, box, info): the contour on the mask's box (maskBox) of KJI arrays; result is the box's KJI 0/1
    uint8 array, box its KJI (lo, hi) per axis, info as geodesicActiveContour's. An expanding contour (propagation
    > 0) moves at most about one voxel per iteration: its box leaves it that much room."""
    box = maskBox(maskKji, intensityKji.shape, reach=iterations if propagation > 0 else 0)
    crop = tuple(slice(lo, hi) for lo, hi in box)
    intensity = sitkImage(intensityKji[crop], spacingIjk)
    mask = sitkImage((maskKji[crop] != 0).astype(np.uint8), spacingIjk, sitk.sitkUInt8)
    result, info = geodesicActiveContour(intensity, mask, propagation, curvature, advection, iterations, edgeScaleMm,
                                         edgeStrength)
    return sitk.GetArrayFromImage(result), box, info
