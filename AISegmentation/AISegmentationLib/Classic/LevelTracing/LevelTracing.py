"""Level tracing at a seed: 2D on the IJ, IK or JK plane through the seed (the traced outline filled on that
slice, as Slicer's Level tracing effect does), or 3D with vtkITKLevelTracing3DImageFilter (the traced surface,
filled).

As in the effect, the seed must lie on the edge of a structure (ITK's level tracing traces the level curve that
passes through the seed and does nothing in a uniform area): a seed in a uniform area is refused with a message.
"""

import numpy as np
import vtk
from vtk.util.numpy_support import vtk_to_numpy

from ...Geometry import arrayFromImage, fillPolygons, orientedImageFromArray
from ...Runtime import vtkITK

PLANES = ("IJ", "IK", "JK")

# Which array axes (KJI order) span each plane, and the axis normal to it.
_PLANE_AXES = {"IJ": ((1, 2), 0), "IK": ((0, 2), 1), "JK": ((0, 1), 2)}


_UNIFORM_MESSAGE = ("Level tracing found no edge at seed IJK {seed}: the seed is in a uniform area. "
                   "Place the seed on the edge of the structure to trace.")


def levelTrace3D(sourceImage, seedIjk):
    """Binary labelmap of the 3D level-traced region that contains the seed."""
    tracer = vtkITK().vtkITKLevelTracing3DImageFilter()
    tracer.SetInputData(sourceImage)
    tracer.SetSeed(*[int(v) for v in seedIjk])
    tracer.Update()
    surface = arrayFromImage(tracer.GetOutput()) != 0
    if not surface.any():
        raise ValueError(_UNIFORM_MESSAGE.format(seed=tuple(int(v) for v in seedIjk)))
    from scipy.ndimage import binary_fill_holes

    return orientedImageFromArray(binary_fill_holes(surface), sourceImage)


def levelTrace2D(sourceImage, seedIjk, plane="IJ"):
    """Binary labelmap: the level-traced outline on the slice through the seed, filled."""
    if plane not in PLANES:
        raise ValueError(f"Unknown level tracing plane '{plane}'; choose one of: {', '.join(PLANES)}")
    tracer = vtkITK().vtkITKLevelTracingImageFilter()
    tracer.SetInputData(sourceImage)
    tracer.SetSeed(*[int(v) for v in seedIjk])
    getattr(tracer, f"SetPlaneTo{plane}")()
    tracer.Update()
    outline = tracer.GetOutput()
    if outline.GetNumberOfPoints() == 0:
        raise ValueError(_UNIFORM_MESSAGE.format(seed=tuple(int(v) for v in seedIjk)))
    labels = np.zeros(sourceImage.GetDimensions()[::-1], np.uint8)
    outlineIjk = vtk_to_numpy(outline.GetPoints().GetData())
    _fillOutline(labels, outlineIjk - np.array(sourceImage.GetExtent()[::2]), plane)
    return orientedImageFromArray(labels, sourceImage)


def _fillOutline(labels, outlineIjk, plane):
    """Fill the closed outline (IJK points relative to the extent start) on its slice of labels (KJI array)."""
    (rowAxis, columnAxis), normalAxis = _PLANE_AXES[plane]
    kji = np.round(outlineIjk[:, ::-1]).astype(int)
    sliceIndex = int(kji[0, normalAxis])
    sliceShape = (labels.shape[rowAxis], labels.shape[columnAxis])
    polygon = np.c_[kji[:, columnAxis], kji[:, rowAxis]].astype(float)  # x = column, y = row
    filled = _rasterizePolygon(polygon, sliceShape)
    filled[kji[:, rowAxis], kji[:, columnAxis]] = 1  # the outline passes through boundary voxel centres
    index = [slice(None)] * 3
    index[normalAxis] = sliceIndex
    labels[tuple(index)] = filled


def _rasterizePolygon(polygon, shape):
    """Even-odd fill of a closed polygon (x, y in voxel units) on a (rows, columns) grid of voxel centres."""
    return fillPolygons([(0, polygon)], (1,) + tuple(shape))[0].astype(np.uint8)
