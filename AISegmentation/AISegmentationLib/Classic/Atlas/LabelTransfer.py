"""Carry an atlas's label map onto the target's grid through the registration's transform (nearest neighbour, so
label values are never mixed). Points of the target that the atlas does not cover get Fusion.OUTSIDE: there the
atlas abstains in the fusion (it does not vote background)."""

import SimpleITK as sitk

from .Fusion import OUTSIDE


def transferLabels(atlasLabels, transform, target):
    """Atlas label image resampled onto the target grid (UInt16: the pixel type the fusion filters take)."""
    labels = sitk.Cast(atlasLabels, sitk.sitkUInt16)
    return sitk.Resample(labels, target, transform, sitk.sitkNearestNeighbor, OUTSIDE, sitk.sitkUInt16)
