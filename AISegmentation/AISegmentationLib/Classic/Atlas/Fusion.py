"""Fusion of the label maps that several atlases give the target, and a per-structure confidence.

- ``vote``: majority vote (sitk.LabelVotingImageFilter); a voxel where no label has a strict plurality is background.
- ``staple``: multi-label STAPLE (sitk.MultiLabelSTAPLEImageFilter), which weighs each atlas by its estimated
  performance; undecided voxels are background.
One atlas is its own result. The confidence of a structure is the mean, over the fused structure's voxels, of the
fraction of atlases that give that voxel the fused label (1.0 means every atlas agrees everywhere inside it).
"""

import SimpleITK as sitk

FUSION_METHODS = ("vote", "staple")


def fuseLabels(labelImages, method="staple"):
    """One UInt16 label image on the common grid of labelImages."""
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion must be one of {', '.join(FUSION_METHODS)} (got {method!r})")
    if not labelImages:
        raise ValueError("Nothing to fuse: no atlas label map")
    if len(labelImages) == 1:
        return sitk.Cast(labelImages[0], sitk.sitkUInt16)
    if method == "vote":
        return sitk.LabelVoting(list(labelImages), 0)
    staple = sitk.MultiLabelSTAPLEImageFilter()
    staple.SetLabelForUndecidedPixels(0)
    return sitk.Cast(staple.Execute(list(labelImages)), sitk.sitkUInt16)


def structureConfidence(labelImages, fused):
    """{label value: mean atlas agreement inside the fused structure} for every non-zero label of fused."""
    agreement = None
    for image in labelImages:
        same = sitk.Cast(sitk.Equal(image, fused), sitk.sitkFloat32)
        agreement = same if agreement is None else agreement + same
    agreement = agreement / float(len(labelImages))
    statistics = sitk.LabelStatisticsImageFilter()
    statistics.Execute(agreement, fused)
    return {int(label): float(statistics.GetMean(label)) for label in statistics.GetLabels() if label != 0}
