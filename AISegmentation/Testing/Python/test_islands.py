import numpy as np
import pytest

from DevTools.SyntheticImages import makeVolume, sceneSnapshot


def _islandsSegment(logic):
    labels = np.zeros((20, 30, 40), np.uint8)
    labels[2:8, 2:8, 2:8] = 1      # 216 voxels
    labels[10:12, 10:12, 10:12] = 1  # 8 voxels
    labels[15, 20, 30] = 1           # 1 voxel
    labels[15, 21, 31] = 1           # 1 voxel, diagonal neighbour only: its own island (face connectivity)
    volume = makeVolume(logic, labels.astype(np.int16) * 50, spacing=(1.5, 1.0, 0.7))
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "islands")
    logic.writeLabelmapArray(segmentation, segmentId, volume, labels)
    return volume, segmentation, segmentId, labels


def test_keep_largest_island(logic):
    volume, segmentation, segmentId, labels = _islandsSegment(logic)
    logic.keepLargestIsland(volume, segmentation, segmentId)
    result = logic.segmentArray(segmentation, segmentId, volume)
    expected = np.zeros_like(labels)
    expected[2:8, 2:8, 2:8] = 1
    assert np.array_equal(result, expected)


@pytest.mark.parametrize("minimumSize, expectedVoxels", [(1, 226), (2, 224), (8, 224), (9, 216), (217, 0)])
def test_remove_small_islands(logic, minimumSize, expectedVoxels):
    volume, segmentation, segmentId, _ = _islandsSegment(logic)
    logic.removeSmallIslands(volume, segmentation, segmentId, minimumSize)
    assert int(logic.segmentArray(segmentation, segmentId, volume).sum()) == expectedVoxels


def test_many_islands_do_not_overflow(logic):
    labels = np.zeros((12, 60, 60), np.uint8)
    labels[::2, ::2, ::2] = 1  # 6 * 30 * 30 = 5400 single-voxel islands (more than 255)
    labels[:, 40:, 40:] = 1
    volume = makeVolume(logic, labels.astype(np.int16))
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "dust")
    logic.writeLabelmapArray(segmentation, segmentId, volume, labels)
    logic.keepLargestIsland(volume, segmentation, segmentId)
    result = logic.segmentArray(segmentation, segmentId, volume)
    assert result[:, 40:, 40:].all() and result.sum() == 12 * 20 * 20


def test_islands_of_an_empty_segment_is_a_clear_error(logic):
    volume, segmentation, _, _ = _islandsSegment(logic)
    empty = logic.addSegment(segmentation, "empty")
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="is empty"):
        logic.keepLargestIsland(volume, segmentation, empty)
    with pytest.raises(ValueError, match="at least 1 voxel"):
        logic.removeSmallIslands(volume, segmentation, segmentation.GetSegmentation().GetNthSegmentID(0), 0)
    assert sceneSnapshot(logic, segmentation) == before
