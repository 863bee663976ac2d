"""Island clean-up with vtkITKIslandMath, as Slicer's Islands effect: keep the largest island, or remove the
islands smaller than a number of voxels."""

import vtk

from ...Geometry import binaryImage
from ...Runtime import vtkITK
from ...Validation import requireInteger

# Allowed minimum island sizes (voxels): vtkITKIslandMath takes a C int.
SIZE_RANGE = (1, 2 ** 31 - 1)


def requireMinimumSize(minimumSize):
    """int minimumSize when it is a whole number in SIZE_RANGE; otherwise ValueError naming the option."""
    return requireInteger("minimumSize (smallest island kept, at least 1 voxel)", minimumSize, *SIZE_RANGE)


def _islandLabels(binaryLabelmap, minimumSize, fullyConnected):
    # The output has the input's scalar type: cast up so that more than 255 islands cannot overflow it
    # (ITK throws, and the exception would end the whole process).
    cast = vtk.vtkImageCast()
    cast.SetInputData(binaryLabelmap)
    cast.SetOutputScalarTypeToUnsignedInt()
    islandMath = vtkITK().vtkITKIslandMath()
    islandMath.SetInputConnection(cast.GetOutputPort())
    islandMath.SetFullyConnected(fullyConnected)
    islandMath.SetMinimumSize(int(minimumSize))
    islandMath.Update()
    labels = islandMath.GetOutput()
    return labels, islandMath.GetNumberOfIslands()


def keepLargestIsland(binaryLabelmap, fullyConnected=False):
    """Binary labelmap of the largest island (vtkITKIslandMath numbers islands by decreasing size)."""
    labels, _ = _islandLabels(binaryLabelmap, 0, fullyConnected)
    result = binaryImage(labels, 1)
    result.CopyDirections(binaryLabelmap)
    return result


def removeSmallIslands(binaryLabelmap, minimumSize, fullyConnected=False):
    """Binary labelmap without the islands that have fewer than minimumSize voxels (a whole number >= 1)."""
    minimumSize = requireMinimumSize(minimumSize)
    labels, _ = _islandLabels(binaryLabelmap, minimumSize, fullyConnected)
    result = binaryImage(labels, 1, float(2 ** 31 - 1))
    result.CopyDirections(binaryLabelmap)
    return result
