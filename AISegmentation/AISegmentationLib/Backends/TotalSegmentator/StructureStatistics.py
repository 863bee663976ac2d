"""Per-structure statistics of an AI result, computed here (numpy) from the segments as written and the input volume:
voxels, volume (mL), mean and standard deviation of the input's intensities in the structure, and whether it touches
the volume's border (then its volume is likely incomplete). Returned as a table node that the segmentation node
references (role STATISTICS_REFERENCE); the command line writes it as a CSV beside the segmentation.
"""

import numpy as np
import slicer
import vtk

from ...Segments import segmentTag
from ..Jobs.ResultExtras import STATISTICS_REFERENCE
COLUMNS = ("structure", "labelValue", "voxels", "volumeMl", "mean", "std", "touchesBorder")


def _touchesBorder(mask):
    return any(mask.take(index, axis=axis).any() for axis in range(mask.ndim) for index in (0, -1))


def structureRows(segmentArrays, intensities, spacing):
    """Rows (dicts of COLUMNS) from {name: (label value, KJI 0/1 mask)} and the intensities on the same grid."""
    voxelMl = float(np.prod(spacing)) / 1000.0
    rows = []
    for name, (value, mask) in segmentArrays.items():
        inside = intensities[mask.astype(bool)].astype(np.float64)
        rows.append({"structure": name, "labelValue": int(value), "voxels": int(inside.size),
                     "volumeMl": round(inside.size * voxelMl, 4),
                     "mean": float(inside.mean()) if inside.size else float("nan"),
                     "std": float(inside.std()) if inside.size else float("nan"),
                     "touchesBorder": bool(inside.size and _touchesBorder(mask))})
    return rows


def addStatisticsTable(scene, segmentationNode, volumeNode, segmentIds):
    """A table node of the segments `segmentIds` (as written) over volumeNode, referenced by the segmentation."""
    if volumeNode.GetImageData().GetNumberOfScalarComponents() != 1:
        raise ValueError(f"Statistics need a scalar volume; '{volumeNode.GetName()}' has "
                         f"{volumeNode.GetImageData().GetNumberOfScalarComponents()} components")
    intensities = slicer.util.arrayFromVolume(volumeNode)
    segmentation = segmentationNode.GetSegmentation()
    arrays = {}
    for segmentId in segmentIds:
        segment = segmentation.GetSegment(segmentId)
        value = segmentTag(segment, "AISegmentation.labelValue") or segment.GetLabelValue()
        arrays[segment.GetName()] = (int(value), slicer.util.arrayFromSegmentBinaryLabelmap(segmentationNode,
                                                                                              segmentId, volumeNode))
    rows = structureRows(arrays, intensities, volumeNode.GetSpacing())
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{segmentationNode.GetName()} statistics")
    arrayTypes = {"structure": vtk.vtkStringArray, "labelValue": vtk.vtkIntArray, "voxels": vtk.vtkIntArray,
                  "touchesBorder": vtk.vtkIntArray}
    for name in COLUMNS:
        column = arrayTypes.get(name, vtk.vtkDoubleArray)()
        column.SetName(name)
        for row in rows:
            column.InsertNextValue(int(row[name]) if name == "touchesBorder" else row[name])
        table.AddColumn(column)
    table.SetColumnUnitLabel("volumeMl", "mL")
    table.SetColumnDescription("mean", "mean intensity of the input volume inside the structure")
    table.SetColumnDescription("touchesBorder", "1: the structure touches the volume's border (volume incomplete)")
    segmentationNode.SetNodeReferenceID(STATISTICS_REFERENCE, table.GetID())
    return table
