"""Prompt geometry: RAS points, boxes, lasso polygons and scribble masks -> voxel prompts on the volume's grid.

Everything is checked here, before anything is sent: a point outside the volume, a box or lasso that does not meet
it, an empty scribble are refused with a ValueError naming the prompt. Voxel indices are KJI (numpy order of the
volume's array); boxes are half-open ((k0, k1), (j0, j1), (i0, i1)).
"""

import numpy as np

from ..Boxes import boundingBox
from ..Geometry import rasToIjk, requireInsideVolume

# A box or lasso whose extent along a voxel axis stays below this many voxels lies on one slice of that axis.
FLAT_TOLERANCE = 1.0


def _dimensionsKji(volumeNode):
    return np.array(volumeNode.GetImageData().GetDimensions()[::-1])


def pointKji(volumeNode, rasPoint, what="Point prompt"):
    """KJI voxel index of one RAS point; ValueError when it lies outside the volume."""
    rasPoint = np.asarray(rasPoint, float).reshape(-1)
    if rasPoint.shape != (3,) or not np.all(np.isfinite(rasPoint)):
        raise ValueError(f"{what} needs one RAS point (3 finite numbers), got {rasPoint.tolist()}")
    return tuple(int(v) for v in requireInsideVolume(volumeNode, rasPoint, what)[0][::-1])


def boxKji(volumeNode, rasCorners, what="Box prompt"):
    """Half-open KJI box around RAS points (two opposite corners, or all eight of an oriented box).

    An axis along which the box is thinner than one voxel becomes a single slice (a 2D box, as drawn in a slice
    view). The box is clipped to the volume; one that misses the volume entirely is refused.
    """
    corners = np.atleast_2d(np.asarray(rasCorners, float))
    if corners.shape[1] != 3 or len(corners) < 2 or not np.all(np.isfinite(corners)):
        raise ValueError(f"{what} needs at least two RAS corner points")
    if len(corners) == 2:
        corners = np.array([[x, y, z] for x in corners[:, 0] for y in corners[:, 1] for z in corners[:, 2]])
    kji = rasToIjk(volumeNode, corners)[:, ::-1]
    low, high = kji.min(0), kji.max(0)
    lower = np.where(high - low < FLAT_TOLERANCE, np.round((low + high) / 2), np.ceil(low - 0.5)).astype(int)
    upper = np.where(high - low < FLAT_TOLERANCE, lower + 1, np.floor(high + 0.5).astype(int) + 1)
    dimensions = _dimensionsKji(volumeNode)
    clippedLower, clippedUpper = np.maximum(lower, 0), np.minimum(upper, dimensions)
    if np.any(clippedUpper <= clippedLower):
        raise ValueError(f"{what} lies outside volume '{volumeNode.GetName()}' (voxel box {_describe(lower, upper)}, "
                         f"dimensions KJI {tuple(int(d) for d in dimensions)})")
    return tuple((int(lo), int(hi)) for lo, hi in zip(clippedLower, clippedUpper))


def lassoMask(volumeNode, rasPolygon, what="Lasso prompt"):
    """(mask, box): the filled closed polygon on the one slice it lies on (KJI uint8 mask of the volume, its box)."""
    polygon = np.atleast_2d(np.asarray(rasPolygon, float))
    if polygon.shape[1] != 3 or len(polygon) < 3 or not np.all(np.isfinite(polygon)):
        raise ValueError(f"{what} needs a closed curve of at least 3 RAS points, got {len(polygon)}")
    kji = rasToIjk(volumeNode, polygon)[:, ::-1]
    spread = kji.max(0) - kji.min(0)
    axis = int(np.argmin(spread))
    if spread[axis] >= FLAT_TOLERANCE:
        raise ValueError(f"{what} must lie on one slice; its points span {spread[axis]:.1f} voxels even along the "
                         f"flattest voxel axis. Draw it in a slice view aligned with the volume.")
    dimensions = _dimensionsKji(volumeNode)
    index = int(np.round(kji[:, axis].mean()))
    if not 0 <= index < dimensions[axis]:
        raise ValueError(f"{what} lies on slice {index} along voxel axis {'KJI'[axis]}, outside volume "
                         f"'{volumeNode.GetName()}' (0 to {dimensions[axis] - 1})")
    inPlane = [a for a in range(3) if a != axis]
    filled = fillPolygon(kji[:, inPlane], dimensions[inPlane])
    if not filled.any():
        raise ValueError(f"{what} encloses no voxel of volume '{volumeNode.GetName()}'")
    mask = np.zeros(tuple(dimensions), np.uint8)
    region = [slice(None)] * 3
    region[axis] = index
    mask[tuple(region)] = filled
    return mask, boundingBox(mask)


def fillPolygon(vertices, shape):
    """uint8 mask (shape) of the voxel centres inside a closed polygon (even-odd rule), vertices as (row, column)."""
    mask = np.zeros(tuple(int(s) for s in shape), np.uint8)
    low = np.maximum(np.floor(vertices.min(0)).astype(int), 0)
    high = np.minimum(np.ceil(vertices.max(0)).astype(int) + 1, mask.shape)
    if np.any(high <= low):
        return mask
    rows, columns = np.mgrid[low[0]:high[0], low[1]:high[1]]
    inside = np.zeros(rows.shape, bool)
    start, end = vertices, np.roll(vertices, -1, axis=0)
    for (r0, c0), (r1, c1) in zip(start, end):
        crosses = (r0 > rows) != (r1 > rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            columnAtRow = c0 + (rows - r0) * (c1 - c0) / (r1 - r0)
        inside ^= crosses & (columns < columnAtRow)
    mask[low[0]:high[0], low[1]:high[1]] = inside
    return mask


def scribbleMask(volumeNode, mask, what="Scribble prompt"):
    """(mask, box) of a painted scribble given as a KJI array on the volume's grid; refused when empty."""
    mask = np.asarray(mask)
    dimensions = tuple(int(d) for d in _dimensionsKji(volumeNode))
    if mask.shape != dimensions:
        raise ValueError(f"{what} mask has shape {mask.shape}; volume '{volumeNode.GetName()}' needs {dimensions}")
    box = boundingBox(mask)
    if box is None:
        raise ValueError(f"{what} is empty: paint the scribble first")
    if mask.dtype == bool:
        mask = mask.view(np.uint8)
    if mask.dtype != np.uint8 or mask[tuple(slice(lo, hi) for lo, hi in box)].max() > 1:
        mask = (mask != 0).astype(np.uint8)
    return mask, box


def _describe(lower, upper):
    return ", ".join(f"{'KJI'[a]} {int(lo)}..{int(hi) - 1}" for a, (lo, hi) in enumerate(zip(lower, upper)))
