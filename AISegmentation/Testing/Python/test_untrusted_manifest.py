"""A cohort manifest cannot run code: a row may vary only what its backend declares perCase (a task, a subset of
structures, folds, the device), never model folders, checkpoints, download or statistics switches; and an nnU-Net
checkpoint is loaded as weights only, so a crafted pickle in a model folder runs nothing."""

import os
import shutil

import pytest
from DevTools.TinyModels import aiLogic, nnunetEnvironment, phantomVolume, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.Backends import Registry
from AISegmentationLib import Manifest
from AISegmentationLib.Cohort import CaseTask, CohortRunner
from AISegmentationLib.Cohort.CohortLogic import CohortLogic

FORBIDDEN = [("nnunet", {"modelFolders": ["/tmp/evil"]}, "it names files the backend loads"),
             ("nnunet", {"checkpoint": "evil.pth"}, "chosen by whoever runs the cohort"),
             ("totalsegmentator", {"allowDownload": True}, "chosen by whoever runs the cohort"),
             ("totalsegmentator", {"usageStatistics": True}, "downloads, usage statistics"),
             ("totalsegmentator", {"licenseNumber": "x"}, "chosen by whoever runs the cohort"),
             ("moose", {"allowDownload": True}, "chosen by whoever runs the cohort"),
             ("monaiauto3dseg", {"modelFile": "/tmp/evil.zip"}, "a model folder or model file is code")]
ALLOWED = [("nnunet", {"folds": [0], "tta": False, "stepSize": 0.7, "device": "cpu"}),
           ("totalsegmentator", {"task": "total_mr", "fast": True, "roiSubset": ["liver"], "device": "cpu"}),
           ("moose", {"model": "clin_ct_lungs", "checkModality": False}),
           ("monaiauto3dseg", {"inputs": ["t1"], "overlap": 0.5})]


def test_every_backend_declares_what_a_case_may_vary_and_never_a_path_or_a_switch():
    for name in Registry.backendNames():
        for option in Registry.getBackend(name).options:
            if option.type == "path" or option.name in ("allowDownload", "usageStatistics", "licenseNumber",
                                                        "checkpoint"):
                assert not option.perCase, (name, option.name)
    assert {option.name for option in Registry.getBackend("nnunet").options if option.perCase} == \
        {"folds", "device", "tta", "stepSize"}


def _manifest(tmp_path, options):
    image = tmp_path / "images" / "c1.nii.gz"
    image.parent.mkdir(exist_ok=True)
    text = '{' + ", ".join(f'""{key}"": {_json(value)}' for key, value in options.items()) + '}'
    path = tmp_path / "cohort.csv"
    path.write_text(f'case,image,options\nc0,{image},\nc1,{image},"{text}"\n')
    return str(path)


def _json(value):
    import json

    return json.dumps(value).replace('"', '""')


@pytest.mark.parametrize("backend, options, why", FORBIDDEN)
def test_a_manifest_row_setting_a_forbidden_option_is_refused_before_anything_runs(logic, tmp_path, backend,
                                                                                    options, why):
    manifest = _manifest(tmp_path, options)
    name = next(iter(options))
    commandOptions = {"modelFolders": [str(tmp_path / "model")]} if backend == "nnunet" else {}
    with pytest.raises(ValueError) as raised:
        CohortLogic(logic).runCohort(manifest, str(tmp_path / "out"), steps=("segment",), backend=backend,
                        backendOptions=commandOptions, workers=1)
    message = str(raised.value)
    assert f"cohort.csv, line 3 (case 'c1'): the manifest may not set option '{name}'" in message, message
    assert why in message and "on the command line" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("backend, options", ALLOWED)
def test_what_a_case_may_vary_passes(backend, options):
    declarations = Registry.getBackend(backend).options
    case = Manifest.case("c1", ["a.nii.gz"], options=options)
    assert CaseTask.caseOptions({"device": "auto"}, case, declarations, backend) == {"device": "auto", **options}


def test_the_worker_checks_a_case_given_without_a_manifest_too(logic, tmp_path, sampleFile):
    case = Manifest.case("c1", [sampleFile("example_ct_sm.nii.gz")], options={"modelFolders": ["/tmp/evil"]})
    record, = CohortRunner.runCasesInProcess([case], str(tmp_path / "out"), ("segment",), "nnunet",
                                             {"modelFolders": [str(tmp_path / "model")], "device": "cpu"},
                                             logic=logic)
    assert record["status"] == "failed" and "may not set option 'modelFolders'" in record["error"]
    from AISegmentationLib.Backends.Options import requireCaseOptions

    with pytest.raises(ValueError, match="where: the manifest may not set option 'usageStatistics'"):
        requireCaseOptions(Registry.getBackend("totalsegmentator").options, {"usageStatistics": True}, "where")


# The child: checkpoints as weights only ----------------------------------------------------------------------------

CRAFTED_CHECKPOINT = """
import os, sys, torch

class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))

torch.save({"trainer_name": "nnUNetTrainer", "network_weights": {}, "payload": Payload()}, sys.argv[1])
"""


@pytest.mark.slow
def test_a_crafted_pickle_checkpoint_runs_nothing_and_is_a_clear_error(aiLogic, tinyModels, tmp_path):
    import subprocess

    model = tmp_path / "Dataset990_Crafted" / os.path.basename(tinyModels["phantomModel"])
    shutil.copytree(tinyModels["phantomModel"], model)
    checkpoint = model / "fold_0" / "checkpoint_final.pth"
    marker = tmp_path / "code-ran"
    python = aiLogic.backendEnvironmentDetails("nnunet")["python"]
    script = tmp_path / "craft.py"
    script.write_text(CRAFTED_CHECKPOINT)
    subprocess.run([python, str(script), str(checkpoint), str(marker)], check=True)
    assert not marker.exists()
    (volume,), _truth = phantomVolume(aiLogic, seed=902)
    with pytest.raises(Exception, match=r"Refused to load the checkpoint .*fold_0.*posix.system.*model folders you "
                                        "trust"):
        aiLogic.runNnUNet(volume, str(model), folds=[0], device="cpu", environment="isolated")
    assert not marker.exists(), "the checkpoint's code ran"
    # the real checkpoints (numpy scalars in the training log) still load as weights only
    segmentation = aiLogic.runNnUNet(volume, tinyModels["phantomModel"], folds=[0], device="cpu",
                                     environment="isolated", tta=False)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 2
    assert os.path.exists(tinyModels["phantomModel"])
