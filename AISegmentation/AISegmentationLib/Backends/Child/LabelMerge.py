"""One segmentation from the label maps of several models of one run (TotalSegmentator's tasks, MOOSE's models).

Each source's label values are moved past the previous sources' (its names kept), so that no two structures share a
value; where structures of two sources overlap, the later source's structure takes the voxel (one label map holds one
structure per voxel). A structure name given by two sources is refused (segments are found by name): the parent side
checks it before any process starts where the names are known, the child before any network runs. Standard library
and numpy only: imported by bare name in the children and as ``..Child.LabelMerge`` by the parent side.
"""


def sharedName(groups):
    """[(source, structure names)] -> (earlier source, later source, name) for the first name two sources both give,
    or None."""
    seen = {}
    for source, names in groups:
        for name in names:
            other = seen.setdefault(name, source)
            if other != source:
                return other, source, name
    return None


def requireDistinctNames(groups, what, error=ValueError):
    """`error` (ValueError on the parent side, the child's UserError) when two sources name one structure alike.
    what: how the message names the sources, e.g. "TotalSegmentator tasks"."""
    clash = sharedName(groups)
    if clash:
        earlier, later, name = clash
        raise error(f"{what} '{earlier}' and '{later}' both name a structure '{name}': one segmentation cannot hold "
                    f"both; run them separately")


def mergeLabelMaps(results):
    """[(source, labels, {value: name})] -> (one uint16 label map, {value: (source, name)}): each source's values
    moved past the previous sources' (by their highest declared value); a later source takes an overlapping voxel;
    value 0 is background in every source."""
    import numpy as np

    merged, names, offset = None, {}, 0
    for source, labels, classes in results:
        if merged is None:
            merged = np.zeros(labels.shape, np.uint16)
        elif labels.shape != merged.shape:
            raise ValueError(f"The label map of '{source}' has another shape ({labels.shape}) than the first one's "
                             f"({merged.shape})")
        for value, name in classes.items():
            if int(value) == 0:  # background (some label tables list it) is no structure
                continue
            mask = labels == int(value)
            if mask.any():
                merged[mask] = int(value) + offset
            names[int(value) + offset] = (source, name)
        offset += max(map(int, classes), default=0)
    return merged, names
