"""A changed region of the segmentation: a box of KJI index ranges and the 0/1 mask inside it."""

import numpy as np

from .Errors import ServerReplyError


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


def emptyRegion():
    return ChangedRegion(((0, 0), (0, 0), (0, 0)), np.zeros((0, 0, 0), np.uint8))


def checkedBox(box, shape, origin, what):
    """box as ((k0, k1), (j0, j1), (i0, i1)) of ints inside an array of shape; ServerReplyError otherwise.

    A box partly outside the volume is refused, not clipped: the server and this client disagree about the image
    then, so the mask cannot be trusted to be aligned with it.
    """
    try:
        pairs = [tuple(pair) for pair in box]
        valid = len(pairs) == len(shape) and all(
            len(pair) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
            for pair in pairs)
    except TypeError:
        valid = False
    if not valid:
        raise ServerReplyError(f"The nnInteractive server at {origin} sent a changed box for '{what}' that is not "
                               f"three (start, stop) index pairs: {str(box)[:120]}")
    pairs = tuple((int(lo), int(hi)) for lo, hi in pairs)
    if not all(0 <= lo <= hi <= size for (lo, hi), size in zip(pairs, shape)):
        raise ServerReplyError(
            f"The nnInteractive server at {origin} sent a changed box {pairs} for '{what}' that lies outside the "
            f"volume (KJI size {tuple(shape)}). Nothing was written; the next prompt sends the segment again.")
    return pairs


def checkedRegion(region, shape, origin, what):
    """The region unchanged when its box lies inside shape and its mask is 0/1 of the box's shape; else
    ServerReplyError (nothing is written from such a reply)."""
    if not isinstance(region, ChangedRegion):
        raise ServerReplyError(f"The nnInteractive client returned no changed region for '{what}' ({region!r:.80})")
    if region.isEmpty:
        return region
    checkedBox(region.box, shape, origin, what)
    mask = region.mask
    if not isinstance(mask, np.ndarray) or not (mask.dtype == bool or np.issubdtype(mask.dtype, np.integer)):
        raise ServerReplyError(f"The nnInteractive server at {origin} sent a mask for '{what}' that is not an "
                               f"integer array ({type(mask).__name__}, {getattr(mask, 'dtype', None)})")
    if mask.size and (mask.min() < 0 or mask.max() > 1):
        raise ServerReplyError(f"The nnInteractive server at {origin} sent a mask for '{what}' with values other "
                               f"than 0 and 1 ({mask.min()}..{mask.max()})")
    return region
