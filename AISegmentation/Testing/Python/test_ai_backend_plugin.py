"""A backend is a plugin: one registered at test time (a folder outside the module, no other file touched) is found
by the Logic (startBackend end to end, with provenance), the CLI (its generated ``segment`` arguments) and the
panel's declarations; and the facade's console API is the one it was before the area logics were composed."""

import inspect
import json
import sys
import textwrap

import numpy as np
import pytest
from DevTools.SyntheticImages import makeVolume

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Logic import AISegmentationLogic

PARENT = '''
    """Example backend, parent side: voxels at or above a threshold become one segment."""

    from AISegmentationLib.Backends.Backend import Backend, PreparedRun
    from AISegmentationLib.Backends.Options import BackendOption


    class ExampleBackend(Backend):
        name = "example"
        title = "Example threshold"
        help = "voxels at or above a threshold"
        environmentName = "example"
        childModule = "ChildExample.py"
        packages = ("SimpleITK",)
        options = (BackendOption("threshold", "float", 100.0, "lowest intensity", unit="HU", minimum=-1000.0),
                   BackendOption("label", "str", "bright", "segment name"))

        def prepare(self, context, threshold=100.0, label="bright"):
            parameters = {"threshold": threshold, "label": label}
            return PreparedRun(dict(parameters), ["image"], f"threshold {threshold}", parameters)
'''
CHILD = '''
    """Example backend, child side (its own Python: SimpleITK and numpy only)."""

    import json


    def run(request, channel):
        import numpy as np
        import SimpleITK as sitk

        channel.stage(0, 50, "Thresholding")
        image = sitk.ReadImage(request["inputs"][0])
        labels = (sitk.GetArrayFromImage(image) >= request["options"]["threshold"]).astype(np.uint8)
        result = sitk.GetImageFromArray(labels)
        result.CopyInformation(image)
        sitk.WriteImage(result, request["outputLabelmap"])
        with open(request["outputLabels"], "w", encoding="utf-8") as file:
            json.dump({"labels": {"1": {"name": request["options"]["label"]}}}, file)
        return {"info": {"versions": {"SimpleITK": sitk.Version.VersionString()}, "device": "cpu"}}
'''

# Every public name of AISegmentationLogic before the AI and interactive logics were composed (signature without
# self; None: a property or attribute).
CONSOLE_API = {
    "addSegment": "(segmentationNode, name, color=None)", "aiBackendNames": "()", "aiEnvironments": None,
    "allowInteractiveServer": "(url=None)",
    "autoThreshold": "(volumeNode, segmentationNode, segmentId, method='Otsu', mode='SET_LOWER_MAX', "
                     "currentRange=None)",
    "autoThresholdRange": "(volumeNode, method='Otsu', mode='SET_LOWER_MAX', currentRange=None)",
    "backendEnvironmentDetails": "(name)", "backendEnvironmentStatus": "(name)", "canUndo": "(segmentationNode)",
    "closeInteractiveSession": "()",
    "compareSegmentations": "(referenceNode, comparedNode, pairs=None, tableNode=None, csvPath=None, "
                            "progressCallback=None, match='auto', mapping=None, **options)",  # new: keywords only
    "compareSegments": "(referenceNode, referenceSegmentId, comparedNode, comparedSegmentId, device='auto', "
                       "hausdorff95Mode='max', averageSurfaceDistanceMode='pooled', surfaceDiceTolerance=2.0, "
                       "hausdorffPercentile=95)",  # the percentile: new, last
    "createBackendEnvironment": "(name, force=False, progressCallback=None, cancelEvent=None)",
    "createSegmentation": "(volumeNode, name='Segmentation')",
    "estimateNnUNetMemory": "(volumeNodes, modelFolders, **options)",
    "estimateTotalSegmentatorMemory": "(volumeNode, task='total', **options)",
    "exportLabelmap": "(segmentationNode, referenceVolumeNode, path)",
    "getOrAddSegment": "(segmentationNode, name, color=None)",
    "growFromSeeds": "(volumeNode, segmentationNode, seedSegmentIds, seedLocalityFactor=0.0)",
    "importLabelmap": "(path, labelNames=None, referenceVolumeNode=None, name=None)",
    "importNnUNetModel": "(zipPath, destinationFolder)", "importTotalSegmentatorWeights": "(source)",
    "installRuntimePackages": "(confirm=None)", "intensityRange": "(volumeNode)",
    "interactiveBox": "(box, positive=True)", "interactiveConsentCallback": None, "interactiveConsentStore": "()",
    "interactiveLasso": "(polygon, positive=True)",
    "interactivePoint": "(point, positive=True, controlPointIndex=-1)", "interactiveReset": "(clearSegment=True)",
    "interactiveScribble": "(scribble, scribbleSegmentId=None, positive=True)", "interactiveSession": None,
    "interactiveUndo": "()", "keepLargestIsland": "(volumeNode, segmentationNode, segmentId)",
    "levelTrace": "(volumeNode, segmentationNode, segmentId, seedRas, plane='IJ', mode='add')",
    "loadMarkupsPoints": "(path)", "loadSegmentation": "(path, name=None, sourceSeries=None)",
    "loadVolume": "(path, name=None, acceptIrregularSpacing=False)", "masking": "()", "missingRuntimePackages": "()",
    "paintSeeds": "(volumeNode, segmentationNode, segmentId, rasPoints, radiusMm=5.0)", "redo": "(segmentationNode)",
    "removeBackendEnvironment": "(name)", "removeGrowFromSeedsPreview": "()",
    "removeSmallIslands": "(volumeNode, segmentationNode, segmentId, minimumSize)",
    "revokeInteractiveServer": "(url=None)",
    "runNnUNet": "(*args, progressCallback=None, cancelEvent=None, **kwargs)",
    "runTotalSegmentator": "(*args, progressCallback=None, cancelEvent=None, **kwargs)",
    "saveComparisonCsv": "(rows, path)", "saveSegmentation": "(segmentationNode, path)",
    "saveVolume": "(volumeNode, path)", "scene": None, "segmentArray": "(segmentationNode, segmentId, volumeNode)",
    "segmentEditor": None, "segmentStatistics": "(segmentationNode, volumeNode)",
    "setInteractiveConsentStore": "(store)",
    "setInteractiveServer": "(url, apiKey=None, protocol='auto', connectTimeout=5.0, readTimeout=120.0, "
                            "uploadTimeout=600.0, verifyTls=True)",
    "setMasking": "(maskMode='everywhere', maskSegmentId=None, overwriteMode='allSegments', intensityRange=None)",
    "showGrowFromSeedsPreview": "(session)", "startCreateBackendEnvironment": "(name, force=False)",
    "startInteractiveFromSegment": "(volumeNode, segmentationNode, segmentId)",
    "startInteractiveSegmentation": "(volumeNode, segmentationNode, segmentId)",
    "startNnUNet": "(volumeNodes, modelFolders, segmentationNode=None, folds=None, checkpoint='checkpoint_final.pth', "
                   "device='auto', tta=True, stepSize=0.5, environment='auto')",
    "startTotalSegmentator": "(volumeNode, task='total', segmentationNode=None, fast=False, fastest=False, "
                             "roiSubset=None, device='auto', licenseNumber=None, allowDownload=True, "
                             "usageStatistics=False, environment='auto')",
    "testInteractiveConnection": "()", "threshold": "(volumeNode, segmentationNode, segmentId, minimum, maximum)",
    "totalSegmentatorHome": None, "totalSegmentatorTasks": "()", "undo": "(segmentationNode)",
    "useInteractiveServer": "(url, apiKey=None)",
    "validateNnUNetModel": "(modelFolder, folds=None, checkpoint='checkpoint_final.pth')",
    "visibleSegmentIds": "(segmentationNode)",
    "writeLabelmapArray": "(segmentationNode, segmentId, volumeNode, mask, mode='set')",
}


@pytest.fixture
def exampleBackend(tmp_path, monkeypatch):
    """The example backend's folder (parent side, child side, requirements file), registered for this test only."""
    folder = tmp_path / "Example"
    folder.mkdir()
    (folder / "ExampleBackend.py").write_text(textwrap.dedent(PARENT))
    (folder / "ChildExample.py").write_text(textwrap.dedent(CHILD))
    (folder / "example-requirements.txt").write_text("SimpleITK\nnumpy\n")
    monkeypatch.syspath_prepend(str(folder))
    import ExampleBackend

    backend = Registry.registerBackend(ExampleBackend.ExampleBackend)
    yield backend
    Registry.unregisterBackend(backend.name)
    sys.modules.pop("ExampleBackend", None)


def _volume(logic):
    image = np.zeros((12, 14, 16), np.int16)
    image[3:8, 4:10, 5:12] = 300
    image[9, 1, 1] = 150
    return makeVolume(logic, image, (1.0, 1.5, 2.0), (5.0, -3.0, 1.0), name="example"), image


def test_the_console_api_of_the_facade_is_unchanged(logic):
    for name, expected in CONSOLE_API.items():
        member = inspect.getattr_static(AISegmentationLogic, name, None)
        assert member is not None, f"AISegmentationLogic.{name} is gone"
        if expected is None:
            assert isinstance(member, property), name
        else:
            assert str(inspect.signature(getattr(logic, name))) == expected, name
    logic.interactiveConsentCallback = print
    assert logic.interactive.interactiveConsentCallback is print
    assert logic.aiEnvironments is logic.ai.aiEnvironments


def test_an_unknown_backend_or_option_is_a_clear_error(logic):
    volume, _ = _volume(logic)
    with pytest.raises(ValueError, match="Unknown AI backend 'nope'; choose one of: .*nnunet"):
        logic.startBackend("nope", volume)
    with pytest.raises(ValueError, match=r"Unknown option\(s\) bogus for nnU-Net; its options: modelFolders"):
        logic.startBackend("nnunet", volume, modelFolders=["/x"], bogus=1)
    with pytest.raises(ValueError, match="Option 'device' must be one of auto, cpu, cuda, cuda:0, .*, mps; got 'gpu'"):
        logic.startBackend("totalsegmentator", volume, device="gpu")
    with pytest.raises(ValueError, match="Option 'fast' must be True or False"):
        logic.estimateBackendMemory("totalsegmentator", volume, fast="yes")
    with pytest.raises(ValueError, match="Option 'modelFolders' is required"):
        logic.startBackend("nnunet", volume)


def test_a_backend_registered_at_test_time_runs_end_to_end(logic, exampleBackend):
    assert "example" in logic.backendNames()
    options = {option.name: option for option in logic.backendOptions("example")}
    assert options["threshold"].type == "float" and options["threshold"].unit == "HU"
    volume, image = _volume(logic)
    with pytest.raises(ValueError, match=r"Option 'threshold' must be a finite number >= -1000 HU, got -5000"):
        logic.startBackend("example", volume, environment="current", threshold=-5000)
    assert logic.estimateBackendMemory("example", volume).peakBytes > 0
    progress = []
    segmentation = logic.runBackend("example", volume, environment="current", threshold=200,
                                    progressCallback=lambda percent, message: progress.append(percent))
    segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("bright")
    np.testing.assert_array_equal(logic.segmentArray(segmentation, segmentId, volume), image >= 200)
    assert segmentation.GetAttribute("AISegmentation.backend") == "Example threshold"
    assert json.loads(segmentation.GetAttribute("AISegmentation.parameters")) == {"threshold": 200.0,
                                                                                 "label": "bright"}
    assert segmentation.GetAttribute("AISegmentation.environment") == "current" and progress[-1] == 100
    logic.undo(segmentation)  # one undo state: the segment goes again
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 0


def test_a_backend_registered_at_test_time_gets_its_cli_arguments(logic, exampleBackend, tmp_path, capsys):
    from AISegmentationLib.CommandLine import Main as AISegmentationCLI

    volume, image = _volume(logic)
    inputPath = logic.saveVolume(volume, str(tmp_path / "input.nii.gz"))
    output = tmp_path / "out.seg.nrrd"
    argv = ["segment", "example", inputPath, "--threshold", "200", "--label", "core", "--environment", "current",
            "--output", str(output)]
    args = AISegmentationCLI.buildParser().parse_args(argv)
    assert (args.option_threshold, args.option_label) == (200.0, "core")
    with pytest.raises(SystemExit):
        AISegmentationCLI.buildParser().parse_args(argv[:3] + ["--threshold", "high"])
    assert "--threshold: Option 'threshold': 'high' is not a valid float" in capsys.readouterr().err
    assert AISegmentationCLI.main(argv) == 0, capsys.readouterr().err
    assert "Example threshold on cpu" in capsys.readouterr().out
    loaded = logic.loadSegmentation(str(output))
    segmentId = loaded.GetSegmentation().GetSegmentIdBySegmentName("core")
    np.testing.assert_array_equal(logic.segmentArray(loaded, segmentId, logic.loadVolume(inputPath)), image >= 200)
