"""Atlas-based segmentation (Classic/Atlas): a phantom deformed by a known smooth field (the deformable stage recovers
its structures, rigid alone does not; several differently deformed atlases fused beat one), the real example CTs
(an atlas of one patient, the other patient's CT as target), bad input and Cancel with the scene unchanged."""

import logging
import math
import threading
import time

import numpy as np
import pytest
import SimpleITK as sitk
import slicer

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Segments import segmentTag

SPACING = 2.0
SHAPE = (40, 56, 56)  # KJI
STRUCTURES = {1: "sphere", 2: "ellipsoid", 3: "box"}


def phantom():
    """(intensity image, label image): a body with three structures of different intensities, 2 mm voxels."""
    k, j, i = np.mgrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]].astype(float)
    labels = np.zeros(SHAPE, np.uint16)
    labels[((i - 18) ** 2 + (j - 28) ** 2 + (k - 20) ** 2) < 8 ** 2] = 1
    labels[((i - 38) / 7) ** 2 + ((j - 22) / 10) ** 2 + ((k - 20) / 8) ** 2 < 1] = 2
    labels[30:44, 32:42, 12:28] = 3
    body = ((i - 28) / 25) ** 2 + ((j - 28) / 25) ** 2 + ((k - 20) / 19) ** 2 < 1
    image = np.where(body, 40.0, -500.0) + np.choose(labels, [0.0, 200.0, 400.0, 120.0])
    image += np.random.default_rng(3).normal(0, 5, SHAPE)
    return _image(image.astype(np.float32)), _image(labels)


def _image(array):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([SPACING] * 3)
    return image


def deformation(amplitude=5.0, period=80.0, phase=0.0):
    """A smooth displacement field (mm) on the phantom's grid: each axis moves with a sine of another axis."""
    z, y, x = np.mgrid[:SHAPE[0], :SHAPE[1], :SHAPE[2]].astype(float) * SPACING
    field = np.stack([np.sin(2 * math.pi * y / period + phase), np.sin(2 * math.pi * z / period + 2 * phase),
                      np.sin(2 * math.pi * x / period + 3 * phase)], axis=-1) * amplitude
    image = sitk.GetImageFromArray(field, isVector=True)
    image.SetSpacing([SPACING] * 3)
    return sitk.DisplacementFieldTransform(sitk.Cast(image, sitk.sitkVectorFloat64))


def deformed(image, labels, transform):
    return (sitk.Resample(image, image, transform, sitk.sitkLinear, -500.0),
            sitk.Resample(labels, labels, transform, sitk.sitkNearestNeighbor, 0))


def volumeNode(logic, image, name, labelMap=False):
    node = logic.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelMap else "vtkMRMLScalarVolumeNode", name)
    slicer.util.updateVolumeFromArray(node, sitk.GetArrayFromImage(image))
    node.SetSpacing(image.GetSpacing())
    origin = image.GetOrigin()
    node.SetOrigin(-origin[0], -origin[1], origin[2])
    node.SetIJKToRASDirections(-1, 0, 0, 0, -1, 0, 0, 0, 1)
    return node


def dice(a, b):
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    return 2.0 * np.count_nonzero(a & b) / max(1, np.count_nonzero(a) + np.count_nonzero(b))


def structureDice(logic, segmentation, target, truth, names):
    """{name: Dice of the segment named so against truth == value}; 0 for a structure that is missing."""
    scores = {}
    for value, name in names.items():
        segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName(name)
        found = logic.segmentArray(segmentation, segmentId, target) if segmentId else np.zeros_like(truth)
        scores[name] = round(dice(found, truth == value), 3)
    return scores


def runAtlas(logic, target, atlases, **options):
    segmentation = logic.createSegmentation(target, "Atlas result")
    started = time.perf_counter()
    result = logic.runClassicTool("atlas", target, segmentation, volumes=atlases, **options)
    return segmentation, result, time.perf_counter() - started


@pytest.fixture(autouse=True)
def twoThreads():
    before = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(2)
    yield
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(before)


def phantomCase(logic):
    image, labels = phantom()
    targetImage, truthImage = deformed(image, labels, deformation())
    target = volumeNode(logic, targetImage, "target")
    atlas = (volumeNode(logic, image, "atlas"), volumeNode(logic, labels, "atlas labels", labelMap=True))
    return target, atlas, sitk.GetArrayFromImage(truthImage)


@pytest.mark.slow
def test_phantomDeformableStageRecoversTheStructures(logic):
    """Demons at the phantom's own 2 mm spacing with a 1.5 mm field smoothing (measured: sphere 0.98, ellipsoid 0.97,
    box 0.92); rigid alone stays well below (0.76 / 0.81 / 0.40)."""
    target, atlas, truth = phantomCase(logic)
    names = {value: f"Label {value}" for value in STRUCTURES}
    segmentation, result, seconds = runAtlas(logic, target, [atlas], deformable="demons", iterations=150,
                                             demonsSmoothing=1.5, registrationSpacing=2.0)
    deformable = structureDice(logic, segmentation, target, truth, names)
    rigidSegmentation, _, rigidSeconds = runAtlas(logic, target, [atlas], linear="rigid", deformable="none",
                                                  search=False)
    rigid = structureDice(logic, rigidSegmentation, target, truth, names)
    logging.info("Phantom, one atlas: deformable %s in %.1f s; rigid only %s in %.1f s", deformable, seconds, rigid,
                 rigidSeconds)
    assert min(deformable.values()) >= 0.9, deformable
    assert min(rigid.values()) < 0.9 and sum(deformable.values()) > sum(rigid.values()) + 0.1, (rigid, deformable)
    assert [row["segment"] for row in result["rows"]] == list(names.values())
    for row in result["rows"]:
        segment = segmentation.GetSegmentation().GetSegment(
            segmentation.GetSegmentation().GetSegmentIdBySegmentName(row["segment"]))
        assert row["confidence"] == 1.0 and float(segmentTag(segment, "AISegmentation.atlasConfidence")) == 1.0


@pytest.mark.slow
def test_phantomSeveralAtlasesBeatOne(logic):
    """Three atlases whose anatomy differs (each the phantom deformed by its own field), registered with the linear
    stage only: each one's error is its own, and fusing them (vote, then STAPLE) recovers more than one of them does
    on average."""
    image, labels = phantom()
    targetImage, truthImage = deformed(image, labels, deformation())
    target, truth = volumeNode(logic, targetImage, "target"), sitk.GetArrayFromImage(truthImage)
    names = {value: f"Label {value}" for value in STRUCTURES}
    linearOnly = {"deformable": "none", "search": False}
    atlases, single = [], []
    for index, phase in enumerate((1.5, 3.0, 4.5)):
        atlasImage, atlasLabels = deformed(image, labels, deformation(phase=phase))
        atlas = (volumeNode(logic, atlasImage, f"atlas {index}"),
                 volumeNode(logic, atlasLabels, f"atlas {index} labels", labelMap=True))
        atlases.append(atlas)
        segmentation, _, _ = runAtlas(logic, target, [atlas], **linearOnly)
        single.append(np.mean(list(structureDice(logic, segmentation, target, truth, names).values())))
    for fusion in ("vote", "staple"):
        segmentation, result, seconds = runAtlas(logic, target, atlases, fusion=fusion, **linearOnly)
        fused = structureDice(logic, segmentation, target, truth, names)
        logging.info("Phantom, 3 atlases (%s): single mean Dice %s, fused %s in %.1f s; confidence %s", fusion,
                     [round(s, 3) for s in single], fused, seconds, [row["confidence"] for row in result["rows"]])
        assert np.mean(list(fused.values())) > np.mean(single) + 0.02, (fusion, single, fused)
        assert all(0 < row["confidence"] < 1 for row in result["rows"]), fusion


CT_STRUCTURES = {5: "liver", 1: "spleen", 6: "stomach", 52: "aorta"}  # TotalSegmentator's `total` class values
CT_BARS = {"liver": 0.8, "spleen": 0.75, "stomach": 0.55}  # measured 0.84 / 0.83 / 0.62; rigid only 0.76 / 0.62 / 0.59


@pytest.mark.slow
def test_realCtAtlasSegmentsAnotherPatientsSlab(logic, sampleFile):
    """Atlas: example_ct (3 mm, the whole abdomen) with TotalSegmentator's labels; target: the other patient's 40 mm
    DICOM slab (0.98 x 0.98 x 2 mm) whose frame lies about 1.2 m away along z. The exhaustive slice-axis search finds
    the slab's level, affine then demons follow; truth is TotalSegmentator's output for the slab (a model's, not a
    manual one). The shared data holds only one other CT patient, so "several atlases beat one" is shown on the
    phantom (test_phantomSeveralAtlasesBeatOne), not on real CTs."""
    from AISegmentationLib import VolumeIO
    from AISegmentationLib.Classic.Atlas.AtlasImages import volumeToImage
    from AISegmentationLib.SampleData import fetchDicomSeries

    target = logic.loadVolume(fetchDicomSeries(), "slab")
    atlas = (logic.loadVolume(sampleFile("example_ct.nii.gz"), "atlas CT"),
             VolumeIO.loadVolume(logic.runtime, sampleFile("example_seg_fast_force_split.nii.gz"), "atlas labels",
                                 labelmap=True))
    truth = sitk.GetArrayFromImage(sitk.Resample(sitk.ReadImage(sampleFile("example_seg_dicom.nii.gz")),
                                                 volumeToImage(target, "slab"), sitk.Transform(),
                                                 sitk.sitkNearestNeighbor))
    labelNames = ",".join(f"{value}={name}" for value, name in CT_STRUCTURES.items())
    segmentation, result, seconds = runAtlas(logic, target, [atlas], labelNames=labelNames)
    scores = structureDice(logic, segmentation, target, truth, CT_STRUCTURES)
    logging.info("Real CT, atlas example_ct -> DICOM slab: Dice %s in %.1f s", scores, seconds)
    assert all(scores[name] >= bar for name, bar in CT_BARS.items()), (scores, CT_BARS)
    assert {"liver", "spleen", "stomach"} <= {row["segment"] for row in result["rows"]}


def test_fusionLetsAnAtlasAbstainWhereItDoesNotCoverTheTarget():
    from AISegmentationLib.Classic.Atlas.Fusion import OUTSIDE, fuseLabels, structureConfidence

    def image(values):
        return sitk.GetImageFromArray(np.asarray([[values]], np.uint16))
    covering = [image([1, 1, 2, 0]), image([1, 1, 2, 0])]
    partial = image([OUTSIDE, OUTSIDE, 0, OUTSIDE])  # covers the third voxel only, where it says background
    for method in ("vote", "staple"):
        fused = sitk.GetArrayFromImage(fuseLabels(covering + [partial], method)).ravel().tolist()
        assert fused[:2] == [1, 1] and fused[3] == 0, (method, fused)
    assert sitk.GetArrayFromImage(fuseLabels([partial], "vote")).ravel().tolist() == [0, 0, 0, 0]
    fused = fuseLabels(covering + [partial], "vote")
    assert structureConfidence(covering + [partial], fused)[1] == 1.0


def _sceneState(logic, segmentation):
    return logic.scene.GetNumberOfNodes(), segmentation.GetSegmentation().GetNumberOfSegments(), \
        segmentation.GetMTime()


def test_badInputIsRefusedAndTheSceneIsUnchanged(logic):
    target, atlas, _ = phantomCase(logic)
    segmentation = logic.createSegmentation(target, "Result")
    before = _sceneState(logic, segmentation)
    image, labels = phantom()
    offGrid = volumeNode(logic, sitk.Resample(labels, [30, 30, 30], sitk.Transform(), sitk.sitkNearestNeighbor,
                                              labels.GetOrigin(), [3.0] * 3), "off grid", labelMap=True)
    empty = volumeNode(logic, labels * 0, "empty", labelMap=True)
    nanImage = sitk.GetArrayFromImage(image)
    nanImage[3, 4, 5] = np.nan
    nanTarget = volumeNode(logic, sitk.GetImageFromArray(nanImage), "nan target")
    before = _sceneState(logic, segmentation)
    cases = [(target, [], "at least one atlas"), (target, [(atlas[0], offGrid)], "not on its image's grid"),
             (target, [(atlas[0], empty)], "is empty"), (nanTarget, [atlas], "NaN or infinite")]
    for volume, atlases, message in cases:
        with pytest.raises(ValueError, match=message):
            logic.runClassicTool("atlas", volume, segmentation, volumes=atlases, deformable="none")
        assert _sceneState(logic, segmentation) == before, message
    with pytest.raises(ValueError, match="fusion"):
        logic.runClassicTool("atlas", target, segmentation, volumes=[atlas], fusion="mean")
    assert _sceneState(logic, segmentation) == before


@pytest.mark.slow
def test_cancelMidRegistrationLeavesTheSceneUnchanged(logic):
    target, atlas, _ = phantomCase(logic)
    segmentation = logic.createSegmentation(target, "Result")
    before = _sceneState(logic, segmentation)
    job = logic.startClassicTool("atlas", target, segmentation, volumes=[atlas], deformable="demons", iterations=1000,
                                 registrationSpacing=2.0)
    seen = []
    deadline = time.time() + 60
    while not job.done and time.time() < deadline:
        seen.append(job.progress)
        if job.progress > 5:
            job.cancel()
        time.sleep(0.05)
    with pytest.raises(JobCancelledError):
        job.wait()
    assert job.state == "cancelled" and max(seen) > 5 and job.seconds < 30
    assert _sceneState(logic, segmentation) == before
    assert not logic.canUndo(segmentation)


def test_cancelEventStopsARunThatBlocks(logic):
    """The console's blocking call: progress to a callback, a cancel event set from another thread."""
    target, atlas, _ = phantomCase(logic)
    segmentation = logic.createSegmentation(target, "Result")
    before = _sceneState(logic, segmentation)
    cancel, reports = threading.Event(), []

    def progress(percent, message):
        reports.append((percent, message))
        if percent > 5:
            cancel.set()
    job = logic.startClassicTool("atlas", target, segmentation, volumes=[atlas], iterations=1000,
                                 registrationSpacing=2.0)
    with pytest.raises(JobCancelledError):
        job.wait(progressCallback=progress, cancelEvent=cancel)
    assert reports and any("Atlas 1 of 1" in message for _, message in reports)
    assert _sceneState(logic, segmentation) == before
