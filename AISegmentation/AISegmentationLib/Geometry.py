"""Geometry helpers: IJK <-> RAS conversions, oriented-image helpers and geometry checks (no Qt)."""

import numpy as np
import slicer
import vtk


def ijkToRasMatrix(volumeNode):
    """IJK-to-RAS matrix of a volume node, including its parent transform when that is linear."""
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    transformNode = volumeNode.GetParentTransformNode()
    if transformNode is not None:
        if not transformNode.IsTransformToWorldLinear():
            raise ValueError(f"Volume '{volumeNode.GetName()}' is under a non-linear transform; harden it first")
        toWorld = vtk.vtkMatrix4x4()
        transformNode.GetMatrixTransformToWorld(toWorld)
        vtk.vtkMatrix4x4.Multiply4x4(toWorld, matrix, matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def volumeImage(volumeNode, shareVoxels=False):
    """vtkOrientedImageData with a volume node's extent and IJK-to-RAS geometry (its parent transform not applied):
    sharing the node's voxels, or geometry only."""
    image = slicer.vtkOrientedImageData()
    if shareVoxels:
        image.ShallowCopy(volumeNode.GetImageData())
    else:
        image.SetExtent(volumeNode.GetImageData().GetExtent())
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    image.SetGeometryFromImageToWorldMatrix(matrix)
    return image


def rasToIjk(volumeNode, rasPoints):
    """Continuous IJK coordinates (N x 3) of RAS points (N x 3, or one point)."""
    points = np.atleast_2d(np.asarray(rasPoints, dtype=float))
    if points.shape[1] != 3:
        raise ValueError(f"RAS points must have 3 coordinates each, got shape {points.shape}")
    rasToIjkMatrix = np.linalg.inv(ijkToRasMatrix(volumeNode))
    homogeneous = np.c_[points, np.ones(len(points))]
    return (homogeneous @ rasToIjkMatrix.T)[:, :3]


def ijkToRas(volumeNode, ijkPoints):
    """RAS coordinates (N x 3) of IJK points (N x 3, or one point)."""
    points = np.atleast_2d(np.asarray(ijkPoints, dtype=float))
    homogeneous = np.c_[points, np.ones(len(points))]
    return (homogeneous @ ijkToRasMatrix(volumeNode).T)[:, :3]


def requireInsideVolume(volumeNode, rasPoints, what="Point"):
    """Rounded IJK indices (N x 3 ints) of RAS points; ValueError naming the first point outside the volume."""
    ijk = np.round(rasToIjk(volumeNode, rasPoints)).astype(int)
    dimensions = np.array(volumeNode.GetImageData().GetDimensions())
    for ras, index in zip(np.atleast_2d(rasPoints), ijk):
        if np.any(index < 0) or np.any(index >= dimensions):
            raise ValueError(
                f"{what} at RAS ({', '.join(f'{v:.1f}' for v in ras)}) is outside volume '{volumeNode.GetName()}' "
                f"(IJK {tuple(int(v) for v in index)}, dimensions {tuple(int(v) for v in dimensions)})")
    return ijk


def orientedImageFromArray(array, referenceImage, scalarType=vtk.VTK_UNSIGNED_CHAR):
    """A vtkOrientedImageData with the geometry of referenceImage and voxels from a KJI-ordered numpy array."""
    image = slicer.vtkOrientedImageData()
    image.SetExtent(referenceImage.GetExtent())
    image.SetSpacing(referenceImage.GetSpacing())
    image.SetOrigin(referenceImage.GetOrigin())
    image.CopyDirections(referenceImage)
    image.AllocateScalars(scalarType, 1)
    arrayFromImage(image)[:] = array
    return image


def croppedLabelmap(referenceImage, box, mask):
    """vtkOrientedImageData (unsigned char) on referenceImage's grid covering only box (KJI (lo, hi) per axis, hi
    exclusive), voxels from mask (the box's KJI array)."""
    extent = referenceImage.GetExtent()
    (k0, k1), (j0, j1), (i0, i1) = box
    image = slicer.vtkOrientedImageData()
    image.SetExtent(extent[0] + i0, extent[0] + i1 - 1, extent[2] + j0, extent[2] + j1 - 1,
                    extent[4] + k0, extent[4] + k1 - 1)
    image.SetSpacing(referenceImage.GetSpacing())
    image.SetOrigin(referenceImage.GetOrigin())
    image.CopyDirections(referenceImage)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    arrayFromImage(image)[:] = mask
    return image


def arrayFromImage(image):
    """KJI-ordered numpy view of a single-component vtkImageData (shares memory)."""
    from vtk.util.numpy_support import vtk_to_numpy

    dims = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(dims[2], dims[1], dims[0])


def binaryImage(image, lower, upper=None):
    """New vtkOrientedImageData (unsigned char 0/1): voxels of image in [lower, upper] (upper defaults to lower)."""
    threshold = vtk.vtkImageThreshold()
    threshold.SetInputData(image)
    threshold.ThresholdBetween(lower, lower if upper is None else upper)
    threshold.SetInValue(1)
    threshold.SetOutValue(0)
    threshold.SetOutputScalarTypeToUnsignedChar()
    threshold.Update()
    result = slicer.vtkOrientedImageData()
    result.ShallowCopy(threshold.GetOutput())
    result.CopyDirections(image)
    return result


def volumeGeometryDescription(volumeNode):
    image = volumeNode.GetImageData()
    return (f"dimensions {image.GetDimensions()}, spacing {tuple(round(s, 4) for s in volumeNode.GetSpacing())}, "
            f"origin {tuple(round(o, 3) for o in volumeNode.GetOrigin())}")


def sameGeometry(imageA, imageB, tolerance=1e-3):
    """True when two oriented images share extent, spacing, origin and directions."""
    if tuple(imageA.GetExtent()) != tuple(imageB.GetExtent()):
        return False
    matrixA, matrixB = vtk.vtkMatrix4x4(), vtk.vtkMatrix4x4()
    imageA.GetImageToWorldMatrix(matrixA)
    imageB.GetImageToWorldMatrix(matrixB)
    return all(abs(matrixA.GetElement(r, c) - matrixB.GetElement(r, c)) <= tolerance
               for r in range(3) for c in range(4))


def fillPolygons(polygons, shape):
    """Boolean KJI mask of closed polygons [(slice index k, Nx2 (column, row) points in voxel units)] filled at the
    voxel centres by the even-odd rule on each slice (vtkPolyDataToImageStencil): a hole is a polygon of its own."""
    from vtk.util import numpy_support

    points, cells = vtk.vtkPoints(), vtk.vtkCellArray()
    for k, polygon in polygons:
        first = points.GetNumberOfPoints()
        for column, row in polygon:
            points.InsertNextPoint(column, row, k)
        cells.InsertNextCell(len(polygon) + 1)
        for n in list(range(len(polygon))) + [0]:
            cells.InsertCellPoint(first + n)
    polyData = vtk.vtkPolyData()
    polyData.SetPoints(points)
    polyData.SetLines(cells)
    extent = (0, shape[2] - 1, 0, shape[1] - 1, 0, shape[0] - 1)
    stencil = vtk.vtkPolyDataToImageStencil()
    stencil.SetInputData(polyData)
    stencil.SetOutputOrigin(0, 0, 0)
    stencil.SetOutputSpacing(1, 1, 1)
    stencil.SetOutputWholeExtent(*extent)
    image = vtk.vtkImageData()
    image.SetExtent(*extent)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    image.GetPointData().GetScalars().Fill(0)
    fill = vtk.vtkImageStencil()
    fill.SetInputData(image)
    fill.SetStencilConnection(stencil.GetOutputPort())
    fill.ReverseStencilOn()
    fill.SetBackgroundValue(1)
    fill.Update()
    return numpy_support.vtk_to_numpy(fill.GetOutput().GetPointData().GetScalars()).reshape(shape).astype(bool)
