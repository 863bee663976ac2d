"""The error map (true positive / false positive / false negative voxels of each structure as segments) and the
surface-distance map (compared surface with its signed distance to the reference surface per point), through the
Logic and the CLI; each against an independent oracle (numpy set operations; the nearest reference mesh vertex by
brute force)."""

import numpy as np
import pytest
import slicer
import vtk
from scipy.spatial.distance import cdist
from vtk.util import numpy_support

from AISegmentationLib.CommandLine.Main import main
from AISegmentationLib.Comparison import ComparisonMaps, SegmentComparison
from DevTools.SyntheticImages import ball, makeVolume


def _segmentation(logic, volume, masks, name):
    node = logic.createSegmentation(volume, name)
    for segmentName, mask in masks.items():
        logic.writeLabelmapArray(node, logic.addSegment(node, segmentName), volume, mask)
    return node


def _scene(logic):
    shape = (24, 28, 30)
    volume = makeVolume(logic, np.zeros(shape, np.int16), spacing=(1.0, 1.2, 1.5))
    liver, comparedLiver = ball(shape, (12, 12, 14), (7, 8, 8)), ball(shape, (12, 14, 15), (6, 8, 9))
    tumour = ball(shape, (5, 5, 5), (2, 2, 2))
    reference = _segmentation(logic, volume, {"liver": liver, "tumour": tumour}, "reference")
    compared = _segmentation(logic, volume, {"liver": comparedLiver}, "compared")
    return volume, reference, compared, {"liver": (liver, comparedLiver), "tumour": (tumour, np.zeros(shape, bool))}


def test_error_labels_match_numpy_set_operations():
    rng = np.random.default_rng(4)
    a, b = rng.random((9, 10, 11)) < 0.4, rng.random((9, 10, 11)) < 0.5
    labels = SegmentComparison.errorLabels(a, b)
    assert np.array_equal(labels == 1, a & b) and np.array_equal(labels == 2, b & ~a)
    assert np.array_equal(labels == 3, a & ~b) and np.array_equal(labels == 0, ~(a | b))


def test_the_error_map_segments_are_the_true_and_false_voxels_of_each_structure(logic):
    volume, reference, compared, masks = _scene(logic)
    errorMap = logic.comparisonErrorMap(reference, compared)
    segmentation = errorMap.GetSegmentation()
    names = {segmentation.GetSegment(i).GetName(): i for i in segmentation.GetSegmentIDs()}
    assert set(names) == {"liver: true positive", "liver: false positive", "liver: false negative",
                          "tumour: false negative"}  # the tumour is absent from the compared side
    for structure, (a, b) in masks.items():
        for what, expected in (("true positive", a & b), ("false positive", b & ~a), ("false negative", a & ~b)):
            segmentId = names.get(f"{structure}: {what}")
            actual = (np.zeros(a.shape, bool) if segmentId is None
                      else slicer.util.arrayFromSegmentBinaryLabelmap(errorMap, segmentId, volume) != 0)
            assert np.array_equal(actual, expected), (structure, what)
    assert segmentation.GetSegment(names["liver: false positive"]).GetColor() == pytest.approx((0.9, 0.25, 0.2))


def test_the_distance_map_carries_signed_distances_to_the_reference_surface(logic):
    shape = (40, 40, 40)
    volume = makeVolume(logic, np.zeros(shape, np.int16))
    reference = _segmentation(logic, volume, {"organ": ball(shape, (20, 20, 20), (9, 9, 9))}, "reference")
    larger = _segmentation(logic, volume, {"organ": ball(shape, (20, 20, 20), (13, 13, 13))}, "larger")
    smaller = _segmentation(logic, volume, {"organ": ball(shape, (20, 20, 20), (6, 6, 6))}, "smaller")
    referenceSurface = vtk.vtkPolyData()
    reference.CreateClosedSurfaceRepresentation()
    reference.GetClosedSurfaceRepresentation(reference.GetSegmentation().GetNthSegmentID(0), referenceSurface)
    vertices = numpy_support.vtk_to_numpy(referenceSurface.GetPoints().GetData())
    edges = _longestEdge(referenceSurface)
    for compared, sign in ((larger, 1), (smaller, -1)):
        [(structure, model)] = logic.comparisonDistanceMap(reference, compared)
        assert structure == "organ" and model.GetDisplayNode().GetActiveScalarName() == "SignedDistance"
        surface = model.GetPolyData()
        distances = numpy_support.vtk_to_numpy(surface.GetPointData().GetArray("SignedDistance"))
        points = numpy_support.vtk_to_numpy(surface.GetPoints().GetData())
        nearestVertex = cdist(points, vertices).min(axis=1)  # brute force
        assert np.all(np.sign(distances) == sign)
        assert np.all(np.abs(distances) <= nearestVertex + 1e-6)
        assert np.all(np.abs(distances) >= nearestVertex - edges)
        assert np.median(np.abs(distances)) == pytest.approx(4.0 if sign > 0 else 3.0, abs=1.0)


def _longestEdge(surface):
    extract = vtk.vtkExtractEdges()
    extract.SetInputData(surface)
    extract.Update()
    lines = extract.GetOutput()
    points = numpy_support.vtk_to_numpy(lines.GetPoints().GetData())
    cells = numpy_support.vtk_to_numpy(lines.GetLines().GetConnectivityArray()).reshape(-1, 2)
    return float(np.linalg.norm(points[cells[:, 0]] - points[cells[:, 1]], axis=1).max())


def test_cli_writes_the_error_map_and_the_distance_map(sampleFile, tmp_path, logic):
    errorPath, distancePath = tmp_path / "errors.seg.nrrd", tmp_path / "distances.vtk"
    assert main(["compare", sampleFile("example_seg.nii.gz"), sampleFile("example_seg_fast.nii.gz"), "--device",
                 "cpu", "--error-map", str(errorPath), "--distance-map", str(distancePath)]) == 0
    errorMap = logic.loadSegmentation(str(errorPath))
    names = [errorMap.GetSegmentation().GetNthSegment(i).GetName()
             for i in range(errorMap.GetSegmentation().GetNumberOfSegments())]
    assert "Label 5: true positive" in names and len(names) > 80
    reader = vtk.vtkPolyDataReader()
    reader.SetFileName(str(distancePath))
    reader.Update()
    output = reader.GetOutput()
    assert output.GetNumberOfPoints() > 1000 and output.GetPointData().GetArray("SignedDistance") is not None
    structures = output.GetFieldData().GetAbstractArray("Structures")
    assert structures.GetNumberOfValues() >= 35 and "Label 5" in [structures.GetValue(i) for i in
                                                                  range(structures.GetNumberOfValues())]


@pytest.mark.parametrize("option, path", [("--error-map", "errors.nii.gz"), ("--distance-map", "distances.stl")])
def test_cli_refuses_a_map_path_of_another_kind_before_any_work(sampleFile, tmp_path, option, path):
    assert main(["compare", sampleFile("example_seg.nii.gz"), sampleFile("example_seg.nii.gz"), option,
                 str(tmp_path / path), "--csv", str(tmp_path / "rows.csv")]) == 2
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match=r"\.vtk or \.vtp"):
        ComparisonMaps.writeDistanceMap([], str(tmp_path / "x.obj"))
