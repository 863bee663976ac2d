"""Synthetic volumes with exactly known answers, as real MRML volume nodes."""

import numpy as np
import slicer

# A rotation about the S axis by 30 degrees, then axes permuted: a clearly non-identity IJK-to-RAS direction.
OBLIQUE_DIRECTIONS = np.array([[0.8660254, -0.5, 0.0], [0.5, 0.8660254, 0.0], [0.0, 0.0, 1.0]])


def makeVolume(logic, array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), directions=None, name="synthetic"):
    """Scalar volume node from a KJI array; spacing/origin in IJK order / RAS; directions: columns = I, J, K axes."""
    node = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.CreateDefaultDisplayNodes()
    node.SetSpacing(*spacing)
    node.SetOrigin(*origin)
    if directions is not None:
        node.SetIJKToRASDirections(np.asarray(directions).tolist())
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    return node


def ball(shape, centerKji, radiusKji):
    """Boolean ellipsoid of the given semi-axes (voxels) in a KJI grid."""
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((axis - c) / r) ** 2 for axis, c, r in zip(grid, centerKji, radiusKji)) <= 1.0


def twoBlobs(shape=(30, 40, 50), noise=5.0, seed=0):
    """Image with two bright blobs (values 100 and 200) on a background of 0, plus Gaussian noise; and their masks."""
    rng = np.random.default_rng(seed)
    blobA = ball(shape, (15, 20, 14), (8, 9, 9))
    blobB = ball(shape, (15, 20, 36), (8, 9, 9))
    image = np.where(blobA, 100.0, 0.0) + np.where(blobB, 200.0, 0.0) + rng.normal(0, noise, shape)
    return image.astype(np.int16), blobA, blobB


def rasOfIjk(volumeNode, ijk):
    from AISegmentationLib.Geometry import ijkToRas

    return ijkToRas(volumeNode, ijk)[0]


def nodeCount(logic):
    return logic.scene.GetNumberOfNodes()


def sceneSnapshot(logic, segmentationNode=None):
    """Number of nodes plus, per segment, its name and voxel content (to check "scene unchanged")."""
    snapshot = {"nodes": logic.scene.GetNumberOfNodes()}
    if segmentationNode is not None:
        segmentation = segmentationNode.GetSegmentation()
        for segmentId in segmentation.GetSegmentIDs():
            array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId)
            snapshot[segmentId] = (segmentation.GetSegment(segmentId).GetName(),
                                   None if array is None else int(array.sum()))
    return snapshot


def dice(a, b):
    """Dice coefficient of two masks (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * (a & b).sum() / total
