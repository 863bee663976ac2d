"""The frames of a sequence in the scene: a Slicer sequence node of scalar volumes (its frames in index order) or a
list of volume nodes; all on one grid, or refused before any backend runs."""

import numpy as np


def sequenceFrames(sequence):
    """[(index value, volume node)] of a sequence node of volumes or of a list of volume nodes; ValueError else."""
    if isinstance(sequence, (list, tuple)):
        frames = [(str(index), node) for index, node in enumerate(sequence)]
    elif hasattr(sequence, "IsA") and sequence.IsA("vtkMRMLSequenceNode"):
        frames = [(sequence.GetNthIndexValue(index), sequence.GetNthDataNode(index))
                  for index in range(sequence.GetNumberOfDataNodes())]
    else:
        raise ValueError("A sequence is a sequence node of volumes or a list of volume nodes")
    if not frames:
        raise ValueError("The sequence has no frames")
    for value, node in frames:
        if node is None or not hasattr(node, "IsA") or not node.IsA("vtkMRMLScalarVolumeNode") \
                or node.GetImageData() is None:
            raise ValueError(f"Frame {value} of the sequence is not a volume with an image")
    requireOneGrid(frames)
    return frames


def frameGeometry(volumeNode):
    """(dimensions, IJK-to-RAS matrix as a 4x4 array) of a volume node."""
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return tuple(volumeNode.GetImageData().GetDimensions()), np.array(
        [[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def requireOneGrid(frames, tolerance=1e-4):
    """ValueError naming the first frame whose dimensions, spacing, origin or axes differ from the first frame's: one
    segmentation sequence has one geometry, and a frame on another grid is most often a frame of another series."""
    firstValue, first = frames[0]
    dimensions, matrix = frameGeometry(first)
    for value, node in frames[1:]:
        otherDimensions, otherMatrix = frameGeometry(node)
        if otherDimensions != dimensions:
            raise ValueError(f"Frame {value} of the sequence has {otherDimensions} voxels, frame {firstValue} "
                             f"{dimensions}: every frame must be on one grid")
        if not np.allclose(otherMatrix, matrix, atol=tolerance * max(1.0, float(np.abs(matrix).max()))):
            raise ValueError(f"Frame {value} of the sequence lies on another grid (spacing, origin or axes) than "
                             f"frame {firstValue}: every frame must be on one grid")


def proxySequence(scene, node):
    """The sequence node of which `node` shows a frame (its proxy node in a browser of the scene), or None."""
    if scene is None or node is None:
        return None
    browserClass = "vtkMRMLSequenceBrowserNode"
    for number in range(scene.GetNumberOfNodesByClass(browserClass)):
        sequence = scene.GetNthNodeByClass(number, browserClass).GetSequenceNode(node)
        if sequence is not None:
            return sequence
    return None
