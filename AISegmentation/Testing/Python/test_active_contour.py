"""The Active contour classic tool (Classic/ActiveContour/): a geodesic active contour (SimpleITK level set) started
from a segment, with a preview session."""

import time

import numpy as np
import pytest
import slicer

from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, ball, dice, makeVolume, sceneSnapshot

SHAPE = (40, 44, 48)
CENTER = (20, 22, 24)


def _phantom(logic, spacing=(1.0, 1.0, 1.0), directions=None):
    """A bright ellipsoid (the truth) on a dark, noisy background, and a segment "rough": a small cube inside it."""
    truth = ball(SHAPE, CENTER, (12, 13, 14))
    rng = np.random.default_rng(1)
    image = (np.where(truth, 100.0, 0.0) + rng.normal(0, 5.0, SHAPE)).astype(np.int16)
    volume = makeVolume(logic, image, spacing=spacing, directions=directions)
    segmentation = logic.createSegmentation(volume, "seg")
    rough = logic.addSegment(segmentation, "rough")
    start = np.zeros(SHAPE, np.uint8)
    start[16:25, 18:27, 20:29] = 1
    logic.writeLabelmapArray(segmentation, rough, volume, start)
    return volume, segmentation, rough, truth


EXPAND = {"propagation": 1.0, "curvature": 1.0, "advection": 1.0, "iterations": 150, "edgeScaleMm": 1.0}


@pytest.mark.parametrize("spacing, directions", [((1, 1, 1), None), ((0.8, 1.0, 1.2), OBLIQUE_DIRECTIONS)])
def test_contour_grows_from_a_cube_to_the_ellipsoid_edge(logic, spacing, directions):
    volume, segmentation, rough, truth = _phantom(logic, spacing, directions)
    before = dice(logic.segmentArray(segmentation, rough, volume), truth)
    session = logic.startClassicPreview("active-contour", volume, segmentation, segmentId=rough, **EXPAND)
    preview = session.previewArray(rough).astype(bool)
    assert int(logic.segmentArray(segmentation, rough, volume).sum()) == 9 ** 3  # a preview writes nothing
    session.apply()
    after = dice(logic.segmentArray(segmentation, rough, volume), truth)
    print(f"active contour phantom {spacing}: Dice {before:.4f} -> {after:.4f} ({session.lastInfo['iterations']} "
          f"iterations, {session.lastComputationSeconds:.2f} s)")
    assert before < 0.35 and after > 0.95
    assert dice(preview, truth) == pytest.approx(after)


def test_too_few_iterations_do_not_reach_the_edge(logic):
    """The quality assertion above is not met by a contour that barely moves."""
    volume, segmentation, rough, truth = _phantom(logic)
    session = logic.startClassicPreview("active-contour", volume, segmentation, segmentId=rough,
                                        **{**EXPAND, "iterations": 2})
    assert dice(session.previewArray(rough), truth) < 0.5


def test_update_after_new_options_cancel_and_undo(logic):
    volume, segmentation, rough, truth = _phantom(logic)
    before = sceneSnapshot(logic, segmentation)
    session = logic.startClassicPreview("active-contour", volume, segmentation, segmentId=rough,
                                        **{**EXPAND, "iterations": 2})
    small = dice(session.previewArray(rough), truth)
    session.setOptions(iterations=150)
    session.update()
    assert dice(session.previewArray(rough), truth) > 0.95 > small
    with pytest.raises(ValueError, match="iterations"):
        session.setOptions(iterations=0)
    session.cancel()
    assert sceneSnapshot(logic, segmentation) == before
    with pytest.raises(ValueError, match="cancelled or applied"):
        session.previewArray(rough)
    logic.runClassicTool("active-contour", volume, segmentation, segmentId=rough, **EXPAND)
    assert sceneSnapshot(logic, segmentation) != before
    logic.undo(segmentation)
    assert sceneSnapshot(logic, segmentation) == before


def _outsideSegment(logic, segmentation):
    from AISegmentationLib.Geometry import arrayFromImage

    segmentId = logic.addSegment(segmentation, "outside")
    image = slicer.vtkOrientedImageData()
    image.SetExtent(200, 203, 200, 203, 200, 203)
    image.AllocateScalars(3, 1)  # VTK_UNSIGNED_CHAR
    arrayFromImage(image)[:] = 1
    slicer.vtkSlicerSegmentationsModuleLogic.SetBinaryLabelmapToSegment(
        image, segmentation, segmentId, slicer.vtkSlicerSegmentationsModuleLogic.MODE_REPLACE, image.GetExtent())
    return segmentId


@pytest.mark.parametrize("options, message", [
    ({"iterations": 0}, "iterations"), ({"iterations": -5}, "iterations"), ({"iterations": 2.5}, "iterations"),
    ({"curvature": -1.0}, "curvature"), ({"advection": float("nan")}, "advection"),
    ({"propagation": float("inf")}, "propagation"), ({"edgeScaleMm": 0.0}, "edgeScaleMm"),
    ({"edgeStrength": -3.0}, "edgeStrength"), ({"speed": 1.0}, "Unknown option"),
])
def test_bad_options_are_refused_with_the_scene_unchanged(logic, options, message):
    volume, segmentation, rough, _ = _phantom(logic)
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match=message):
        logic.runClassicTool("active-contour", volume, segmentation, segmentId=rough, **options)
    with pytest.raises(ValueError, match=message):
        logic.startClassicPreview("active-contour", volume, segmentation, segmentId=rough, **options)
    assert sceneSnapshot(logic, segmentation) == before


def test_bad_inputs_are_refused_with_the_scene_unchanged(logic):
    volume, segmentation, rough, _ = _phantom(logic)
    empty = logic.addSegment(segmentation, "empty")
    outside = _outsideSegment(logic, segmentation)
    before = sceneSnapshot(logic, segmentation)
    run = logic.runClassicTool
    with pytest.raises(ValueError, match="'empty' is empty"):
        run("active-contour", volume, segmentation, segmentId=empty)
    with pytest.raises(ValueError, match="'outside' lies outside volume"):
        run("active-contour", volume, segmentation, segmentId=outside)
    with pytest.raises(ValueError, match="no segment"):
        run("active-contour", volume, segmentation, segmentId=None)
    with pytest.raises(ValueError, match="No source volume"):
        run("active-contour", None, segmentation, segmentId=rough)
    assert sceneSnapshot(logic, segmentation) == before
    floats = slicer.util.arrayFromVolume(volume).astype(np.float32)
    floats[1, 2, 3], floats[4, 5, 6], floats[7, 8, 9] = np.nan, np.inf, -np.inf
    nonFinite = makeVolume(logic, floats, name="nonfinite")
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="3 of its voxels are NaN or infinite"):
        logic.startClassicPreview("active-contour", nonFinite, segmentation, segmentId=rough)
    assert sceneSnapshot(logic, segmentation) == before


def test_rough_liver_on_real_ct_is_not_worse_after_the_contour(logic, sampleFile):
    """A rough liver (30-80 HU inside the reference liver's bounding box, largest island) refined by the contour with
    its default options: the liver's Dice against TotalSegmentator's must not drop (it rises: 0.80 -> 0.88)."""
    from AISegmentationLib.Comparison import SegmentComparison
    from AISegmentationLib.Demo import Demo

    ct = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    reference = logic.loadVolume(sampleFile("example_seg_fast_force_split.nii.gz"), "reference")
    referenceLiver = slicer.util.arrayFromVolume(reference) == Demo.REFERENCE_LIVER_LABEL
    spacing = ct.GetSpacing()[::-1]
    intensities = slicer.util.arrayFromVolume(ct)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(np.argwhere(referenceLiver).min(0),
                                                    np.argwhere(referenceLiver).max(0)))
    rough = np.zeros(intensities.shape, np.uint8)
    rough[box] = (intensities[box] >= 30) & (intensities[box] <= 80)
    segmentation = logic.createSegmentation(ct, "seg")
    liver = logic.addSegment(segmentation, "liver")
    logic.writeLabelmapArray(segmentation, liver, ct, rough)
    logic.keepLargestIsland(ct, segmentation, liver)
    before = SegmentComparison.compareMasks(referenceLiver, logic.segmentArray(segmentation, liver, ct), spacing,
                                            device="cpu").dice
    start = time.perf_counter()
    session = logic.startClassicPreview("active-contour", ct, segmentation, segmentId=liver)
    session.apply()
    seconds = time.perf_counter() - start
    after = SegmentComparison.compareMasks(referenceLiver, logic.segmentArray(segmentation, liver, ct), spacing,
                                           device="cpu").dice
    print(f"active contour on the example CT's rough liver: Dice {before:.4f} -> {after:.4f}, {seconds:.2f} s "
          f"({session.lastInfo['iterations']} iterations, edge strength {session.lastInfo['edgeStrength']:.1f})")
    assert after >= before


def test_command_line_active_contour_and_a_clear_error(logic, tmp_path, capsys):
    from AISegmentationLib.CommandLine.Main import main

    volume, segmentation, rough, truth = _phantom(logic)
    volumePath, roughPath, output = tmp_path / "phantom.nrrd", tmp_path / "rough.seg.nrrd", tmp_path / "out.seg.nrrd"
    logic.saveVolume(volume, str(volumePath))
    logic.saveSegmentation(segmentation, str(roughPath))
    arguments = ["active-contour", str(volumePath), "--segmentation", str(roughPath), "--segment", "rough",
                 "--propagation", "1", "--iterations", "150", "--edge-scale", "1", "--output"]
    assert main(arguments + [str(output)]) == 0
    result = logic.loadSegmentation(str(output), "result")
    resultId = result.GetSegmentation().GetSegmentIdBySegmentName("rough")
    assert dice(logic.segmentArray(result, resultId, volume), truth) > 0.95
    bad = tmp_path / "bad.seg.nrrd"
    assert main(arguments[:-3] + ["--iterations", "-3", "--output", str(bad)]) == 2
    assert "iterations" in capsys.readouterr().err and not bad.exists()
