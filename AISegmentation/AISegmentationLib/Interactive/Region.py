"""A changed region of the segmentation: a box of KJI index ranges and the 0/1 mask inside it."""

import numpy as np


class ChangedRegion:
    """box: ((k0, k1), (j0, j1), (i0, i1)), half-open; mask: uint8 array of the box's shape (the new content)."""

    def __init__(self, box, mask):
        self.box = tuple((int(lo), int(hi)) for lo, hi in box)
        self.mask = mask
        if tuple(mask.shape) != tuple(hi - lo for lo, hi in self.box):
            raise ValueError(f"Changed-region mask shape {mask.shape} does not match its box {self.box}")

    @property
    def slices(self):
        return tuple(slice(lo, hi) for lo, hi in self.box)

    @property
    def isEmpty(self):
        return any(hi <= lo for lo, hi in self.box)

    def __repr__(self):
        return f"ChangedRegion(box={self.box}, voxels={int(np.count_nonzero(self.mask))})"


def boundingBox(mask):
    """Half-open KJI box of the nonzero voxels of a 3D array, or None when there are none.

    One pass over the whole array finds the slices that hold voxels; the other two axes come from that slab only
    (a prompt usually lies on one slice, so this stays cheap on a 512 x 512 x 300 volume).
    """
    slices = np.flatnonzero(np.asarray(mask).reshape(mask.shape[0], -1).any(axis=1))
    if slices.size == 0:
        return None
    k0, k1 = int(slices[0]), int(slices[-1]) + 1
    slab = mask[k0:k1]
    rows = np.flatnonzero(slab.any(axis=(0, 2)))
    columns = np.flatnonzero(slab.any(axis=(0, 1)))
    return ((k0, k1), (int(rows[0]), int(rows[-1]) + 1), (int(columns[0]), int(columns[-1]) + 1))


def emptyRegion():
    return ChangedRegion(((0, 0), (0, 0), (0, 0)), np.zeros((0, 0, 0), np.uint8))
