"""Bounding boxes of masks: numpy only, so that the comparison engine uses them on a machine without Slicer."""

import numpy as np


def boundingBox(mask):
    """((lo, hi) per axis, hi exclusive) of the nonzero voxels of an array, or None when there are none.

    One pass over the whole array finds the range along axis 0 (8 voxels per test for a 1-byte mask); the other
    axes come from that slab only (a prompt on one slice, or a small organ, keeps this cheap on a large volume).
    """
    mask = np.asarray(mask)
    rows = mask.reshape(mask.shape[0], -1)
    if rows.dtype.kind in "biu" and rows.flags.c_contiguous and rows.shape[1] * rows.itemsize % 8 == 0:
        rows = rows.view(np.uint64)
    indices = np.flatnonzero(rows.any(axis=1))
    if indices.size == 0:
        return None
    low, high = int(indices[0]), int(indices[-1]) + 1
    projection = np.logical_or.reduce(mask[low:high], axis=0)
    box = [(low, high)]
    for axis in range(projection.ndim):
        profile = projection.any(axis=tuple(other for other in range(projection.ndim) if other != axis))
        indices = np.flatnonzero(profile)
        box.append((int(indices[0]), int(indices[-1]) + 1))
    return tuple(box)


def boxSlices(box):
    """The box as a tuple of slices, to index the array it came from."""
    return tuple(slice(low, high) for low, high in box)
