"""Where two segmentations disagree, as pictures on MRML: the error map and the surface-distance map.

- Error map: a segmentation with, for each structure, its true positive (both), false positive (compared only) and
  false negative (reference only) voxels as three segments, on the reference segmentation's lattice (the compared
  one placed on it as for the metrics, see SegmentComparisonLayers), for the slice views.
- Surface-distance map: for each structure both sides have, the compared segment's closed surface as a model whose
  points carry ``SignedDistance``: the distance (mm) to the reference segment's closed surface, positive outside the
  reference (over-segmentation), negative inside it (under-segmentation) (vtkImplicitPolyDataDistance), coloured in
  the 3D view. These are distances between meshes (Slicer's closed surfaces, smoothed), made to be looked at; the
  table's numbers are the exact voxel-surface distances of SegmentComparison.
"""

import logging

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from . import SegmentComparison, SegmentComparisonLayers, SegmentComparisonMRML

ERROR_COLORS = {SegmentComparison.TRUE_POSITIVE: (0.20, 0.75, 0.30),
                SegmentComparison.FALSE_POSITIVE: (0.90, 0.25, 0.20),
                SegmentComparison.FALSE_NEGATIVE: (0.20, 0.45, 0.95)}
DISTANCE_ARRAY = "SignedDistance"
STRUCTURE_ARRAY = "StructureIndex"
# Diverging tables first (blue under, red over), then whatever rainbow the scene has.
DISTANCE_COLOR_NODES = ("vtkMRMLColorTableNodeFileDivergingBlueRed.txt",
                        "vtkMRMLColorTableNodeFileColdToHotRainbow.txt", "vtkMRMLColorTableNodeRainbow")


def _pairs(referenceNode, comparedNode, pairs, match, mapping):
    if pairs is None:
        return SegmentComparisonMRML.matchSegments(referenceNode, comparedNode, match, mapping)
    return [tuple(pair) for pair in pairs]


def _structure(pair, referenceSide, comparedSide):
    if len(pair) > 2:
        return pair[2]
    side, key = (referenceSide, pair[0]) if pair[0] is not None else (comparedSide, pair[1])
    return side.segments[key].name


def _regionImage(geometry, region, mask):
    """vtkOrientedImageData (uint8 0/1) of a KJI mask on region ([(lo, hi)] KJI) of the geometry's lattice."""
    image = slicer.vtkOrientedImageData()
    matrix = vtk.vtkMatrix4x4()
    geometry.GetImageToWorldMatrix(matrix)
    image.SetImageToWorldMatrix(matrix)
    (k0, k1), (j0, j1), (i0, i1) = region
    image.SetExtent(i0, i1 - 1, j0, j1 - 1, k0, k1 - 1)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(mask.shape)[:] = mask
    return image


def errorMapSegmentation(scene, referenceNode, comparedNode, pairs=None, match="auto", mapping=None, name=None):
    """A new segmentation node: "<structure>: true positive / false positive / false negative" segments of every
    structure (pairs as SegmentComparisonMRML.compareSegmentations; default: matchSegments with match, mapping)."""
    pairs = _pairs(referenceNode, comparedNode, pairs, match, mapping)
    referenceSide, comparedSide, _spacing = SegmentComparisonMRML.sides(
        referenceNode, [p[0] for p in pairs], comparedNode, [p[1] for p in pairs])
    geometry = SegmentComparisonLayers.referenceGeometry(referenceNode)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                   name or f"Errors of {comparedNode.GetName()} vs {referenceNode.GetName()}")
    node.CreateDefaultDisplayNodes()
    node.SetAndObserveTransformNodeID(referenceNode.GetTransformNodeID())
    segmentation = node.GetSegmentation()
    labelmapName = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    segmentation.SetSourceRepresentationName(labelmapName)
    segmentation.SetConversionParameter(slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(),
                                        slicer.vtkSegmentationConverter.SerializeImageGeometry(geometry))
    for pair in pairs:
        placed = SegmentComparisonLayers.pairRegionMasks(referenceSide, pair[0], comparedSide, pair[1])
        if placed is None:
            continue
        region, reference, compared = placed
        labels = SegmentComparison.errorLabels(reference, compared)
        structure = _structure(pair, referenceSide, comparedSide)
        for value, what in SegmentComparison.ERROR_LABELS.items():
            mask = labels == value
            if not mask.any():
                continue
            segment = slicer.vtkSegment()
            segment.SetName(f"{structure}: {what}")
            segment.SetColor(*ERROR_COLORS[value])
            segment.AddRepresentation(labelmapName, _regionImage(geometry, region, mask.view(np.uint8)))
            segmentation.AddSegment(segment)
    segmentation.CollapseBinaryLabelmaps(False)
    return node


def signedSurfaceDistances(surface, referenceSurface):
    """Signed distance (mm, float64) of each point of a polydata to a closed reference polydata: positive outside,
    negative inside (vtkImplicitPolyDataDistance)."""
    implicit = vtk.vtkImplicitPolyDataDistance()
    implicit.SetInput(referenceSurface)
    values = vtk.vtkDoubleArray()
    implicit.FunctionValue(surface.GetPoints().GetData(), values)
    return numpy_support.vtk_to_numpy(values).astype(np.float64)


def _closedSurface(segmentationNode, segmentId):
    surface = vtk.vtkPolyData()
    segmentationNode.GetClosedSurfaceRepresentation(segmentId, surface)
    return surface


def distanceMapModels(scene, referenceNode, comparedNode, pairs=None, match="auto", mapping=None):
    """[(structure, vtkMRMLModelNode)]: the compared closed surface of each structure both sides have, its points
    carrying DISTANCE_ARRAY (shown, blue under / red over, range ± the largest |distance|), in the reference's
    coordinates."""
    pairs = [pair for pair in _pairs(referenceNode, comparedNode, pairs, match, mapping) if None not in pair[:2]]
    for node in (referenceNode, comparedNode):
        node.CreateClosedSurfaceRepresentation()
    toReference = SegmentComparisonLayers.transformBetween(comparedNode, referenceNode.GetParentTransformNode())
    segmentation = referenceNode.GetSegmentation()
    models = []
    for pair in pairs:
        structure = pair[2] if len(pair) > 2 else segmentation.GetSegment(pair[0]).GetName()
        reference, compared = _closedSurface(referenceNode, pair[0]), _closedSurface(comparedNode, pair[1])
        if reference.GetNumberOfPoints() == 0 or compared.GetNumberOfPoints() == 0:
            logging.info("No distance map for %s: a side has no surface", structure)
            continue
        moved = vtk.vtkTransformPolyDataFilter()
        moved.SetInputData(compared)
        moved.SetTransform(toReference)
        moved.Update()
        surface = vtk.vtkPolyData()
        surface.DeepCopy(moved.GetOutput())
        distances = numpy_support.numpy_to_vtk(signedSurfaceDistances(surface, reference), deep=True)
        distances.SetName(DISTANCE_ARRAY)
        surface.GetPointData().AddArray(distances)
        surface.GetPointData().SetActiveScalars(DISTANCE_ARRAY)
        models.append((structure, _distanceModel(scene, surface, f"{structure} distance map", referenceNode)))
    return models


def _distanceModel(scene, surface, name, referenceNode):
    model = scene.AddNewNodeByClass("vtkMRMLModelNode", name)
    model.SetAndObservePolyData(surface)
    model.SetAndObserveTransformNodeID(referenceNode.GetTransformNodeID())
    model.CreateDefaultDisplayNodes()
    display = model.GetDisplayNode()
    limit = max(float(np.abs(numpy_support.vtk_to_numpy(surface.GetPointData().GetArray(DISTANCE_ARRAY))).max()),
                1e-3)
    display.SetActiveScalarName(DISTANCE_ARRAY)
    display.SetScalarVisibility(True)
    display.SetScalarRangeFlag(slicer.vtkMRMLDisplayNode.UseManualScalarRange)
    display.SetScalarRange(-limit, limit)
    colorId = next((nodeId for nodeId in DISTANCE_COLOR_NODES if scene.GetNodeByID(nodeId)), None)
    if colorId:
        display.SetAndObserveColorNodeID(colorId)
    return model


def writeDistanceMap(models, path):
    """One polydata file (.vtk legacy, or .vtp XML) of the models' surfaces appended, with DISTANCE_ARRAY and
    STRUCTURE_ARRAY (index into the "Structures" field data) per point; written atomically. Returns the path."""
    from ..AtomicWrite import atomicOutput

    extension = str(path).lower().rsplit(".", 1)[-1]
    if extension not in ("vtk", "vtp"):
        raise ValueError(f"A distance map is written as .vtk or .vtp, got '{path}'")
    append = vtk.vtkAppendPolyData()
    names = vtk.vtkStringArray()
    names.SetName("Structures")
    for index, (structure, model) in enumerate(models):
        surface = vtk.vtkPolyData()
        surface.DeepCopy(model.GetPolyData())
        indices = numpy_support.numpy_to_vtk(np.full(surface.GetNumberOfPoints(), index, np.int32), deep=True)
        indices.SetName(STRUCTURE_ARRAY)
        surface.GetPointData().AddArray(indices)
        append.AddInputData(surface)
        names.InsertNextValue(structure)
    if not models:
        append.AddInputData(vtk.vtkPolyData())
    append.Update()
    output = append.GetOutput()
    output.GetFieldData().AddArray(names)
    writer = vtk.vtkXMLPolyDataWriter() if extension == "vtp" else vtk.vtkPolyDataWriter()
    with atomicOutput(path) as temporary:
        writer.SetFileName(temporary)
        writer.SetInputData(output)
        if not writer.Write():
            raise ValueError(f"Could not write the distance map '{path}'")
    return path
