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
    """Half-open KJI box of the nonzero voxels of a 3D array, or None when there are none."""
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(np.any(mask, axis=other))
        if present.size == 0:
            return None
        box.append((int(present[0]), int(present[-1]) + 1))
    return tuple(box)


def emptyRegion():
    return ChangedRegion(((0, 0), (0, 0), (0, 0)), np.zeros((0, 0, 0), np.uint8))
