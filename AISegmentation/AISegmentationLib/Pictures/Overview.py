"""PNG overview: axial, coronal and sagittal slices of a volume with segments overlaid (written with VTK,
no plotting library needed)."""

import numpy as np
import slicer
import vtk
from vtk.util.numpy_support import numpy_to_vtk

from ..AtomicWrite import atomicOutput

MINIMUM_HEIGHT_PIXELS = 384


def _window(image, window):
    low, high = window if window is not None else np.percentile(image, [1, 99])
    return np.clip((image.astype(float) - low) / max(high - low, 1e-6), 0, 1)


def _resizeRows(slice2d, rowSpacing, columnSpacing):
    """Repeat rows so that the pixel aspect ratio is square (nearest neighbour)."""
    factor = rowSpacing / columnSpacing
    rows = max(1, int(round(slice2d.shape[0] * factor)))
    index = np.minimum((np.arange(rows) / factor).astype(int), slice2d.shape[0] - 1)
    return slice2d[index]


def _views(array, center, spacingKji):
    """(axial, coronal, sagittal) 2D slices, display rows first (superior / anterior up), square pixels."""
    k, j, i = center
    sk, sj, si = spacingKji
    axial = array[k][::-1, ::-1]                      # rows: j (anterior up), columns: i (patient right on left)
    coronal = _resizeRows(array[:, j, :][::-1, ::-1], sk, si)
    sagittal = _resizeRows(array[:, :, i][::-1, :], sk, sj)
    return axial, coronal, sagittal


def renderOverview(volumeArray, spacingKji, segmentMasks, path, center=None, window=(-160, 240), alpha=0.45):
    """Write a PNG of three orthogonal slices through `center` (KJI; default: centre of the segments).

    segmentMasks: list of (KJI 0/1 array, (r, g, b) in 0..1).
    """
    if center is None:
        union = np.zeros(volumeArray.shape, bool)
        for mask, _ in segmentMasks:
            union |= mask.astype(bool)
        center = np.argwhere(union).mean(axis=0).astype(int) if union.any() else np.array(volumeArray.shape) // 2
    gray = _window(volumeArray, window)
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    for mask, color in segmentMasks:
        inside = mask.astype(bool)
        rgb[inside] = (1 - alpha) * rgb[inside] + alpha * np.asarray(color)
    panels = _views(rgb, center, spacingKji)
    height = max(p.shape[0] for p in panels)
    gap = np.zeros((height, 4, 3))
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0))) for p in panels]
    canvas = np.concatenate([padded[0], gap, padded[1], gap, padded[2]], axis=1)
    scale = max(1, MINIMUM_HEIGHT_PIXELS // height)
    canvas = canvas.repeat(scale, axis=0).repeat(scale, axis=1)
    _writePng((canvas * 255).astype(np.uint8), path)
    return path


def _writePng(rgb, path):
    """Write an RGB uint8 array as PNG, atomically (a temporary file beside it, renamed when complete)."""
    image = vtk.vtkImageData()
    image.SetDimensions(rgb.shape[1], rgb.shape[0], 1)
    scalars = numpy_to_vtk(np.ascontiguousarray(rgb[::-1]).reshape(-1, 3), deep=True)
    image.GetPointData().SetScalars(scalars)
    with atomicOutput(path) as temporary:
        writer = vtk.vtkPNGWriter()
        writer.SetFileName(temporary)
        writer.SetInputData(image)
        writer.Write()
        if writer.GetErrorCode():
            raise ValueError(f"Could not write the overview PNG '{path}' (VTK error code {writer.GetErrorCode()})")


def segmentationOverview(logic, volumeNode, segmentationNode, path, window=(-160, 240)):
    """Overview PNG of all segments of a segmentation node on its volume. Each segment is read on the volume's own
    grid (resampled when the segmentation has another spacing, extent or orientation), so that any segmentation of
    the volume can be drawn. ``logic`` is not used (kept for the callers)."""
    segmentation = segmentationNode.GetSegmentation()
    volumeArray = slicer.util.arrayFromVolume(volumeNode)
    masks = []
    for segmentId in segmentation.GetSegmentIDs():
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode, segmentId, volumeNode)
        if mask is None:  # an empty segment
            continue
        if mask.shape != volumeArray.shape:
            raise ValueError(f"segment '{segmentation.GetSegment(segmentId).GetName()}' could not be placed on the "
                             f"grid of volume '{volumeNode.GetName()}' ({mask.shape} voxels, the volume has "
                             f"{volumeArray.shape})")
        masks.append((mask, segmentation.GetSegment(segmentId).GetColor()))
    return renderOverview(volumeArray, volumeNode.GetSpacing()[::-1], masks, path, window=window)
