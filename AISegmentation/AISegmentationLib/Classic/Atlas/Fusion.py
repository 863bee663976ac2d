"""Fusion of the label maps that several atlases give the target, and a per-structure confidence.

- ``vote``: majority vote (sitk.LabelVotingImageFilter); a voxel where no label has a strict plurality is background.
- ``staple``: multi-label STAPLE (sitk.MultiLabelSTAPLEImageFilter), which weighs each atlas by its estimated
  performance; undecided voxels are background.
An atlas abstains where it does not cover the target (its transferred labels hold OUTSIDE there): such voxels are
decided by a vote of the atlases that cover them (background where none does). One atlas is its own result. The
confidence of a structure is the mean, over the fused structure's voxels, of the fraction of the covering atlases
that give that voxel the fused label (1.0 means every atlas agrees everywhere inside it).
"""

import numpy as np
import SimpleITK as sitk

FUSION_METHODS = ("vote", "staple")
OUTSIDE = 65535  # the label value of target voxels that an atlas does not cover (not a structure)


def _covered(image):
    return sitk.NotEqual(image, OUTSIDE)


def _withoutOutside(image):
    return sitk.Cast(sitk.Mask(image, _covered(image)), sitk.sitkUInt16)


def _abstainingVote(labelImages):
    """Majority vote of the atlases that cover each voxel (a strict plurality, else background)."""
    stack = np.stack([sitk.GetArrayViewFromImage(image) for image in labelImages])
    values = [int(v) for v in np.unique(stack) if v != OUTSIDE]
    counts = np.stack([np.count_nonzero(stack == value, axis=0) for value in values])
    order = np.sort(counts, axis=0)
    winner = np.asarray(values, np.uint16)[np.argmax(counts, axis=0)]
    decided = (order[-1] > 0) & ((order[-2] < order[-1]) if len(values) > 1 else True)
    fused = sitk.GetImageFromArray(np.where(decided, winner, 0).astype(np.uint16))
    fused.CopyInformation(labelImages[0])
    return fused


def fuseLabels(labelImages, method="staple"):
    """One UInt16 label image on the common grid of labelImages."""
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion must be one of {', '.join(FUSION_METHODS)} (got {method!r})")
    if not labelImages:
        raise ValueError("Nothing to fuse: no atlas label map")
    if len(labelImages) == 1:
        return _withoutOutside(labelImages[0])
    everywhere = _covered(labelImages[0])
    for image in labelImages[1:]:
        everywhere = sitk.And(everywhere, _covered(image))
    if method == "vote":
        fused = sitk.LabelVoting([_withoutOutside(image) for image in labelImages], 0)
    else:
        staple = sitk.MultiLabelSTAPLEImageFilter()
        staple.SetLabelForUndecidedPixels(0)
        fused = sitk.Cast(staple.Execute([_withoutOutside(image) for image in labelImages]), sitk.sitkUInt16)
    if sitk.GetArrayViewFromImage(everywhere).all():
        return fused
    partly = _abstainingVote(labelImages)
    return sitk.Cast(sitk.Mask(fused, everywhere) + sitk.Mask(partly, sitk.Not(everywhere)), sitk.sitkUInt16)


def structureConfidence(labelImages, fused):
    """{label value: mean agreement of the covering atlases inside the fused structure} for every non-zero label."""
    agreement, covering = None, None
    for image in labelImages:
        same = sitk.Cast(sitk.Equal(image, fused), sitk.sitkFloat32)
        covers = sitk.Cast(_covered(image), sitk.sitkFloat32)
        agreement = same if agreement is None else agreement + same
        covering = covers if covering is None else covering + covers
    agreement = agreement / sitk.Maximum(covering, 1.0)
    statistics = sitk.LabelStatisticsImageFilter()
    statistics.Execute(agreement, fused)
    return {int(label): float(statistics.GetMean(label)) for label in statistics.GetLabels() if label != 0}
