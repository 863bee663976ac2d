"""Batch comparison by shared labelmap layers and label-map files by value: the same numbers as the engine on full
masks, for multi-layer segmentations, overlapping segments, other geometries; torch not imported on the CPU."""

import os
import subprocess
import sys

import numpy as np
import pytest
import slicer
import SimpleITK as sitk
import vtk
from vtk.util import numpy_support

from AISegmentationLib.Comparison import SegmentComparison, SegmentComparisonMRML
from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, ball, makeVolume

FIELDS = ("dice", "jaccard", "referenceVolume", "comparedVolume", "hausdorff", "hausdorff95", "averageSurfaceDistance",
          "surfaceDice")
MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _orientedImage(volumeNode, array):
    """vtkOrientedImageData on the volume's grid holding a uint8 KJI array."""
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(*array.shape[::-1])
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    image.SetImageToWorldMatrix(matrix)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(array.shape)[:] = array
    return image


def _addLayer(segmentationNode, volumeNode, labels, names):
    """Segments sharing one labelmap layer: names {label value: name} of the uint8 label array."""
    image = _orientedImage(volumeNode, labels.astype(np.uint8))
    labelmapName = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    for value, name in names.items():
        segment = slicer.vtkSegment()
        segment.SetName(name)
        segment.SetLabelValue(value)
        segment.AddRepresentation(labelmapName, image)
        segmentationNode.GetSegmentation().AddSegment(segment)


def _segmentation(logic, volume, name, layers):
    node = logic.createSegmentation(volume, name)
    for labels, names in layers:
        _addLayer(node, volume, labels, names)
    return node


def _assertSame(result, expected, tolerance=1e-9):
    """Equal up to the rounding of spacings stored in a segmentation's geometry string (relative 1e-7)."""
    for field in FIELDS:
        assert getattr(result, field) == pytest.approx(getattr(expected, field), rel=tolerance and 1e-7,
                                                       abs=tolerance), field


def _overlappingScene(logic):
    """Reference: two layers (liver+spleen shared; a tumour overlapping the liver in its own layer); compared:
    one shared layer with shifted organs and an eroded tumour; plus an empty segment."""
    shape = (30, 36, 40)
    volume = makeVolume(logic, np.zeros(shape, np.int16), spacing=(0.7, 0.9, 2.0), directions=OBLIQUE_DIRECTIONS)
    liver, spleen = ball(shape, (15, 12, 12), (8, 7, 9)), ball(shape, (14, 26, 28), (6, 6, 7))
    tumour = ball(shape, (15, 14, 14), (3, 3, 4))
    referenceShared = liver * 1 + spleen * 2
    comparedLiver, comparedSpleen = np.roll(liver, 1, axis=2), np.roll(spleen, -2, axis=1)
    comparedTumour = ball(shape, (16, 14, 14), (2, 3, 3))
    comparedShared = np.where(comparedTumour, 7, np.where(comparedLiver, 3, np.where(comparedSpleen, 5, 0)))
    reference = _segmentation(logic, volume, "reference", [(referenceShared, {1: "liver", 2: "spleen"}),
                                                           (tumour, {1: "tumour"})])
    compared = _segmentation(logic, volume, "compared", [(comparedShared, {3: "liver", 5: "spleen", 7: "tumour"})])
    logic.addSegment(compared, "empty")
    logic.addSegment(reference, "empty")
    masks = {"liver": (liver, comparedShared == 3), "spleen": (spleen, comparedShared == 5),
             "tumour": (tumour, comparedShared == 7), "empty": (np.zeros(shape, bool), np.zeros(shape, bool))}
    return reference, compared, masks, (2.0, 0.9, 0.7)


def test_batch_by_layers_equals_the_engine_on_full_masks_with_overlaps_in_separate_layers(logic):
    reference, compared, masks, spacing = _overlappingScene(logic)
    segmentation = reference.GetSegmentation()
    layerOf = {segmentation.GetSegment(i).GetName(): segmentation.GetLayerIndex(i)
               for i in segmentation.GetSegmentIDs()}
    assert layerOf["liver"] == layerOf["spleen"] != layerOf["tumour"]  # the overlapping tumour has its own layer
    rows, table = logic.compareSegmentations(reference, compared, device="cpu")
    assert [row["referenceSegment"] for row in rows] == ["liver", "spleen", "tumour", "empty"]
    for row in rows:
        expected = SegmentComparison.compareMasks(*masks[row["referenceSegment"]], spacing, device="cpu")
        _assertSame(row["result"], expected)
    assert rows[3]["result"].dice == 1.0 and rows[3]["result"].note
    assert table.GetNumberOfRows() == 4


def test_single_pair_uses_the_same_layers(logic):
    reference, compared, masks, spacing = _overlappingScene(logic)
    referenceIds = {reference.GetSegmentation().GetSegment(i).GetName(): i
                    for i in reference.GetSegmentation().GetSegmentIDs()}
    comparedIds = {compared.GetSegmentation().GetSegment(i).GetName(): i
                   for i in compared.GetSegmentation().GetSegmentIDs()}
    result = logic.compareSegments(reference, referenceIds["tumour"], compared, comparedIds["tumour"], device="cpu")
    _assertSame(result, SegmentComparison.compareMasks(*masks["tumour"], spacing, device="cpu"))
    a, b, maskSpacing = SegmentComparisonMRML.segmentMasks(reference, referenceIds["liver"], compared,
                                                           comparedIds["liver"])
    assert a.shape == b.shape and a.shape != masks["liver"][0].shape  # cropped to the pair's bounding box
    assert a.sum() == masks["liver"][0].sum() and maskSpacing == pytest.approx(spacing)


def test_other_geometry_is_resampled_as_slicer_resamples_it(logic):
    """Compared segmentation on a coarser, shifted grid: equal to the engine on Slicer's own export of the compared
    segment onto the reference grid."""
    shape = (24, 28, 32)
    fine = makeVolume(logic, np.zeros(shape, np.int16), spacing=(1.0, 1.0, 1.0), name="fine")
    coarse = makeVolume(logic, np.zeros((12, 14, 16), np.int16), spacing=(2.0, 2.0, 2.0), origin=(0.3, 0.6, 0.2),
                        name="coarse")
    referenceMask = ball(shape, (12, 14, 16), (7, 8, 9))
    reference = _segmentation(logic, fine, "reference", [(referenceMask, {1: "organ"})])
    compared = _segmentation(logic, coarse, "compared", [(ball((12, 14, 16), (6, 7, 8), (3, 4, 4)), {1: "organ"})])
    rows, _table = logic.compareSegmentations(reference, compared, device="cpu")
    comparedId = compared.GetSegmentation().GetNthSegmentID(0)
    resampled = slicer.util.arrayFromSegmentBinaryLabelmap(compared, comparedId, fine) != 0
    assert resampled.any()
    _assertSame(rows[0]["result"], SegmentComparison.compareMasks(referenceMask, resampled, (1, 1, 1), device="cpu"))


def _writeLabelmap(path, labels, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(labels)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return str(path)


def _labelPair(tmp_path, comparedSpacing=(1.0, 1.0, 1.0), comparedOrigin=(0.0, 0.0, 0.0)):
    shape = (26, 30, 34)
    reference = np.zeros(shape, np.int16)
    reference[ball(shape, (12, 14, 16), (8, 9, 10))] = 1
    reference[ball(shape, (12, 14, 16), (3, 3, 3))] = 4
    reference[ball(shape, (4, 5, 5), (2, 2, 2))] = -3  # kept as a value (the import remaps it)
    reference[20:24, 24:28, 2:6] = 9  # only in the reference
    compared = np.zeros(shape, np.int16)
    compared[ball(shape, (13, 14, 15), (7, 9, 10))] = 1
    compared[ball(shape, (12, 15, 16), (3, 2, 3))] = 4
    compared[ball(shape, (4, 6, 5), (2, 2, 2))] = -3
    return (_writeLabelmap(tmp_path / "reference.nii.gz", reference),
            _writeLabelmap(tmp_path / "compared.nii.gz", compared, comparedSpacing, comparedOrigin))


@pytest.mark.parametrize("geometry", [{}, {"comparedSpacing": (1.0, 1.2, 0.9), "comparedOrigin": (0.4, -1.1, 0.7)}],
                         ids=["same grid", "other grid"])
def test_labelmap_files_by_value_equal_the_segmentation_path(logic, tmp_path, geometry):
    referencePath, comparedPath = _labelPair(tmp_path, **geometry)
    nodesBefore = logic.scene.GetNumberOfNodes()
    csvPath = tmp_path / "rows.csv"
    rows = logic.compareLabelmapFiles(referencePath, comparedPath, csvPath=str(csvPath), device="cpu")
    assert logic.scene.GetNumberOfNodes() == nodesBefore and csvPath.exists()
    assert [row["referenceSegment"] for row in rows] == ["Label -3", "Label 1", "Label 4", "Label 9"]
    assert rows[3]["comparedSegment"] is None and rows[3]["result"].dice == 0.0  # only in the reference
    reference, compared = logic.importLabelmap(referencePath), logic.importLabelmap(comparedPath)
    expected = logic.compareSegmentations(reference, compared, device="cpu")[0]
    expected = {row["referenceSegment"]: row["result"] for row in expected}
    for row in rows:
        _assertSame(row["result"], expected[row["referenceSegment"]])


def test_labelmap_files_by_name_and_errors(logic, tmp_path):
    referencePath, comparedPath = _labelPair(tmp_path)
    rows = logic.compareLabelmapFiles(referencePath, comparedPath, referenceLabels="1=Liver,4=tumour",
                                      comparedLabels={4: "Tumour", 1: "liver"}, device="cpu")
    assert [(row["referenceSegment"], row["comparedSegment"]) for row in rows] == [
        ("Label -3", "Label -3"), ("Liver", "liver"), ("tumour", "Tumour"), ("Label 9", None)]  # unnamed: default
    rows = logic.compareLabelmapFiles(referencePath, comparedPath, referenceLabels="1=a,4=b,-3=c",
                                      comparedLabels="1=x,4=y,-3=z")  # no name in common: every label a row
    assert [row["referenceSegment"] for row in rows] == ["c", "a", "b", "Label 9", None, None, None]
    with pytest.raises(ValueError, match="match must be"):
        logic.compareLabelmapFiles(referencePath, comparedPath, match="colour")
    with pytest.raises(ValueError, match="does not exist"):
        logic.compareLabelmapFiles(referencePath, tmp_path / "missing.nii.gz")


def test_label_slabs_equal_full_masks():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=(3, 20, 22, 18)).astype(np.uint8)
    labels[0][ball((20, 22, 18), (10, 10, 9), (6, 7, 6))] = 5
    labels[1][ball((20, 22, 18), (11, 10, 9), (5, 7, 6))] = 5
    for value in (1, 5):
        a, b = labels[0] == value, labels[1] == value
        expected = SegmentComparison.compareMasks(a, b, (2.5, 0.8, 0.9), device="cpu")
        slabs = SegmentComparison.compareMaskSlabs(SegmentComparison.LabelSlabs(labels[0], value),
                                                   SegmentComparison.LabelSlabs(labels[1], value), (2.5, 0.8, 0.9),
                                                   device="cpu")
        _assertSame(slabs, expected, 0)
    boxes = SegmentComparison.allLabelBoundingBoxes(labels[2])
    assert sorted(boxes) == [1, 2, 3] and boxes[1] == [(0, 20), (0, 22), (0, 18)]


def _pythonInSubprocess(code):
    environment = dict(os.environ, PYTHONPATH=MODULE_DIR)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env=environment)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip().splitlines()[-1]


def test_torch_is_not_imported_for_the_cpu_device_nor_for_auto_without_a_gpu_driver():
    code = (
        "import sys\nimport numpy as np\nfrom AISegmentationLib.Comparison import SegmentComparison as S\n"
        "a = np.zeros((6, 7, 8), bool); a[1:4, 2:5, 3:6] = True\n"
        "S.compareMasks(a, np.roll(a, 1, 0), (1, 1, 1), device='cpu')\n"
        "S.compareLabelmaps(a.astype(np.uint8), a.astype(np.uint8), (1, 1, 1), [(1, 1)], device='cpu')\n"
        "cpuOnly = 'torch' not in sys.modules\n"
        "S.compareMasks(a, a, (1, 1, 1), device='auto')\n"
        "print(cpuOnly, 'torch' not in sys.modules, S._gpuDriverPresent())\n")
    cpuOnly, autoWithoutTorch, driver = _pythonInSubprocess(code).split()
    assert cpuOnly == "True"
    assert autoWithoutTorch == "True" or driver == "True"


def test_cli_compare_of_two_label_maps_does_not_import_torch(tmp_path):
    referencePath, comparedPath = _labelPair(tmp_path)
    code = ("import sys\nfrom AISegmentationLib.CommandLine.Main import main\n"
            f"code = main(['compare', {referencePath!r}, {comparedPath!r}, '--device', 'cpu', '--json', "
            f"{str(tmp_path / 'r.json')!r}])\n"
            "print(code, 'torch' in sys.modules)\n")
    assert _pythonInSubprocess(code) == "0 False"
    assert (tmp_path / "r.json").exists()
