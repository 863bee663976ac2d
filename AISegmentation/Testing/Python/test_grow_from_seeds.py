import time

import numpy as np
import pytest
import slicer

from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, dice, makeVolume, sceneSnapshot, twoBlobs


def _seeded(logic, spacing=(1.0, 1.0, 1.0), directions=None):
    image, blobA, blobB = twoBlobs(noise=4.0)
    volume = makeVolume(logic, image, spacing=spacing, directions=directions)
    segmentation = logic.createSegmentation(volume, "seg")
    ids = [logic.addSegment(segmentation, name) for name in ("A", "B", "background")]
    seeds = np.zeros(image.shape, np.uint8)
    for segmentId, (k, j, i) in zip(ids[:2], [(15, 20, 14), (15, 20, 36)]):
        seeds[:] = 0
        seeds[k - 1:k + 2, j - 1:j + 2, i - 1:i + 2] = 1
        logic.writeLabelmapArray(segmentation, segmentId, volume, seeds)
    border = np.zeros(image.shape, np.uint8)
    border[2:-2, 2:-2, 2:-2] = 1
    border[3:-3, 3:-3, 3:-3] = 0  # background seeds all around, as a user surrounds the structures
    logic.writeLabelmapArray(segmentation, ids[2], volume, border)
    return volume, segmentation, ids, blobA, blobB


@pytest.mark.parametrize("spacing, directions", [((1, 1, 1), None), ((0.6, 0.9, 2.2), OBLIQUE_DIRECTIONS)])
def test_grow_from_seeds_separates_two_blobs(logic, spacing, directions):
    volume, segmentation, (a, b, background), blobA, blobB = _seeded(logic, spacing, directions)
    session = logic.growFromSeeds(volume, segmentation, [a, b, background])
    assert dice(session.previewArray(a).astype(bool), blobA) > 0.95
    assert dice(session.previewArray(b).astype(bool), blobB) > 0.95
    # The preview does not touch the segmentation; apply does.
    assert logic.segmentArray(segmentation, a, volume).sum() == 27
    session.apply()
    resultA = logic.segmentArray(segmentation, a, volume).astype(bool)
    resultB = logic.segmentArray(segmentation, b, volume).astype(bool)
    assert dice(resultA, blobA) > 0.95 and dice(resultB, blobB) > 0.95
    assert not np.logical_and(resultA, resultB).any()


def test_seed_change_updates_the_preview_incrementally(logic):
    volume, segmentation, (a, b, background), blobA, blobB = _seeded(logic)
    session = logic.growFromSeeds(volume, segmentation, [a, background])
    assert dice(session.previewArray(a).astype(bool), blobA) > 0.95
    assert not session.previewArray(a)[blobB].any()  # blob B has no seed of A yet: it stays background
    filterBefore = session._filter
    logic.paintSeeds(volume, segmentation, a, [_rasOf(volume, (36, 20, 15))], 2.0)  # a seed of A inside blob B
    session.update()
    assert session._filter is filterBefore  # same filter, same crop: incremental
    updated = session.previewArray(a).astype(bool)
    assert updated[blobB].mean() > 0.95 and updated[blobA].mean() > 0.95


def _rasOf(volume, ijk):
    from DevTools.SyntheticImages import rasOfIjk

    return rasOfIjk(volume, ijk)


def test_cancel_leaves_the_segmentation_and_undo_restores_after_apply(logic):
    volume, segmentation, ids, _, _ = _seeded(logic)
    before = sceneSnapshot(logic, segmentation)
    session = logic.growFromSeeds(volume, segmentation, ids)
    session.cancel()
    assert sceneSnapshot(logic, segmentation) == before
    with pytest.raises(ValueError, match="cancelled or applied"):
        session.previewArray(ids[0])
    logic.growFromSeeds(volume, segmentation, ids).apply()
    assert sceneSnapshot(logic, segmentation) != before
    logic.undo(segmentation)
    assert sceneSnapshot(logic, segmentation) == before


def test_bad_seeds_are_refused_with_clear_messages(logic):
    volume, segmentation, (a, b, background), _, _ = _seeded(logic)
    empty = logic.addSegment(segmentation, "empty")
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="at least two seed segments"):
        logic.growFromSeeds(volume, segmentation, [a])
    with pytest.raises(ValueError, match="'empty'.* empty"):
        logic.growFromSeeds(volume, segmentation, [a, empty])
    with pytest.raises(ValueError, match="no segment"):
        logic.growFromSeeds(volume, segmentation, [a, "nope"])
    with pytest.raises(ValueError, match="outside volume"):
        logic.paintSeeds(volume, segmentation, a, [[500.0, 500.0, 500.0]], 3.0)
    with pytest.raises(ValueError, match="No source volume"):
        logic.growFromSeeds(None, segmentation, [a, b])
    assert sceneSnapshot(logic, segmentation) == before


def test_liver_grow_from_seeds_on_real_ct_reaches_dice_085(logic, sampleFile):
    from AISegmentationLib.Comparison import SegmentComparison
    from AISegmentationLib.Demo import Demo

    ct = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    reference = logic.loadVolume(sampleFile("example_seg_fast_force_split.nii.gz"), "reference")
    referenceLiver = slicer.util.arrayFromVolume(reference) == Demo.REFERENCE_LIVER_LABEL
    segmentation = logic.createSegmentation(ct, "seg")
    liver, other = logic.addSegment(segmentation, "liver"), logic.addSegment(segmentation, "other")
    logic.paintSeeds(ct, segmentation, liver, logic.loadMarkupsPoints(Demo.LIVER_SEEDS), Demo.SEED_RADIUS_MM)
    logic.paintSeeds(ct, segmentation, other, logic.loadMarkupsPoints(Demo.OTHER_SEEDS), Demo.SEED_RADIUS_MM)
    start = time.perf_counter()
    logic.growFromSeeds(ct, segmentation, [liver, other]).apply()
    print(f"grow from seeds on the example CT: {time.perf_counter() - start:.2f} s")
    logic.keepLargestIsland(ct, segmentation, liver)
    result = SegmentComparison.compareMasks(referenceLiver, logic.segmentArray(segmentation, liver, ct),
                                            ct.GetSpacing()[::-1], device="cpu")
    assert result.dice >= 0.85


def test_visible_segments_seed_a_preview_node_that_is_removed_again(logic):
    volume, segmentation, (a, b, background), blobA, blobB = _seeded(logic)
    segmentation.GetDisplayNode().SetSegmentVisibility(b, False)
    seeds = logic.visibleSegmentIds(segmentation)
    assert seeds == [a, background]
    session = logic.growFromSeeds(volume, segmentation, seeds)
    nodesBefore = logic.scene.GetNumberOfNodes()
    preview = logic.showGrowFromSeedsPreview(session)
    assert preview.GetSegmentation().GetNumberOfSegments() == 2
    previewA = preview.GetSegmentation().GetNthSegmentID(0)
    assert np.array_equal(slicer.util.arrayFromSegmentBinaryLabelmap(preview, previewA, volume),
                          session.previewArray(a))
    logic.threshold(volume, segmentation, b, 150, 1000)  # another edit in between must not lose the preview node
    logic.removeGrowFromSeedsPreview()
    assert logic.scene.GetNodeByID(preview.GetID()) is None
    assert logic.scene.GetNumberOfNodes() <= nodesBefore
