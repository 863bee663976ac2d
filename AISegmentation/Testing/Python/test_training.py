"""Train your own model: the four-step pipeline on synthetic phantoms made in segmentation nodes, with a tiny plan.

One module-scoped training (slow): a dataset from segmentation nodes whose names differ in spelling (homogenized by
a label mapping), nnU-Net's plan shrunk to a tiny network, 2 folds of a few epochs, fold 0 killed (SIGKILL) in the
middle and fold 1 cancelled, then `aisegmentation train all` resumes both at once on a 2-worker LocalCluster and
evaluates (cross-validation report, test split, the model in the nnU-Net backend's list, its zip); an evaluation
started as a job (the panel's) is cancelled. The bad inputs are quick: each is a ValueError before anything is
written.
"""

import contextlib
import io
import json
import logging
import os
import signal
import time
import zipfile

import numpy as np
import pytest
from DevTools import build_tiny_models
from DevTools.SyntheticImages import dice, makeVolume
from DevTools.TinyModels import nnunetEnvironment  # noqa: F401 - fixture

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Runtime import createHeadlessRuntime

MAPPING = {"bright": ["Bright", "bright_sphere"], "dark": ["dark", "Dark sphere"]}
SPELLINGS = [("Bright", "dark"), ("bright_sphere", "Dark sphere"), ("BRIGHT", "DARK")]
EPOCHS = 10


def phantomCase(logic, seed, spelling=0, names=None):
    """{"case", "volumes", "segmentation"} of a phantom whose two structures are segments (not files)."""
    channels, truth = build_tiny_models.phantomCase(seed)
    volume = makeVolume(logic, channels[0], name=f"phantom{seed}")
    segmentation = logic.createSegmentation(volume, f"phantom{seed} segmentation")
    for value, name in enumerate(names or SPELLINGS[spelling % len(SPELLINGS)], start=1):
        segmentId = logic.addSegment(segmentation, name)
        logic.writeLabelmapArray(segmentation, segmentId, volume, (truth == value).astype(np.uint8))
    return {"case": f"phantom{seed}", "volumes": volume, "segmentation": segmentation}, truth


def _waitForEpochs(job, count, timeout=300):
    deadline = time.time() + timeout
    while len(job.epochs) < count and not job.done:
        assert time.time() < deadline, "no epoch in time"
        time.sleep(0.2)
    assert not job.done, f"the job ended before epoch {count}: {job.error}"


@pytest.fixture(scope="module")
def trained(nnunetEnvironment, tmp_path_factory):  # noqa: F811 - fixture
    from AISegmentationLib.Logic import AISegmentationLogic

    root = tmp_path_factory.mktemp("training")
    previous = os.environ.get("AISEGMENTATION_MODELS_DIR")
    os.environ["AISEGMENTATION_MODELS_DIR"] = str(root / "models")
    logic = AISegmentationLogic(createHeadlessRuntime())
    training = logic.training if hasattr(logic, "training") else _trainingLogic(logic)
    cases = [phantomCase(logic, 300 + index, index)[0] for index in range(7)]
    project = str(root / "project")
    timings = {}
    start = time.time()
    dataset = training.buildTrainingDataset(project, cases=cases, datasetId=777, datasetName="Phantoms",
                                            channelNames=["CT"], mapping=MAPPING, numberOfFolds=2, testFraction=0.15,
                                            seed=1)
    timings["dataset"] = time.time() - start
    start = time.time()
    plan = training.planTraining(project, planPreset="tiny")
    timings["plan"] = time.time() - start
    options = {"epochs": EPOCHS, "device": "cpu"}
    killed = training.startFitModel(project, folds=[0], **options)
    _waitForEpochs(killed, 2)
    os.killpg(killed.pid, signal.SIGKILL)  # the whole tree, mid-epoch, as the OOM killer or a crash would
    with pytest.raises(RuntimeError) as killError:
        killed.wait()
    cancelled = training.startFitModel(project, folds=[1], **options)
    _waitForEpochs(cancelled, 1)
    cancelled.cancel()
    with pytest.raises(JobCancelledError):
        cancelled.wait()
    modelFolder = os.path.join(project, "nnUNet_results", dataset["name"], "nnUNetTrainer__nnUNetPlans__3d_fullres")
    latest = [os.path.isfile(os.path.join(modelFolder, f"fold_{fold}", "checkpoint_latest.pth")) for fold in (0, 1)]
    start = time.time()
    cli, logged = _trainAllOnTheCommandLine(project, root / "PhantomTest.zip")
    timings["train all (fit resumed on a 2-worker LocalCluster, evaluate)"] = time.time() - start
    evaluation = training.trainingState(project)["evaluate"]
    evaluating = training.startEvaluateTraining(project, modelName="Cancelled", device="cpu")
    returnedRunning = not evaluating.done
    deadline = time.time() + 120
    while evaluating.pid is None and not evaluating.done and time.time() < deadline:
        time.sleep(0.1)  # nnU-Net's first step is running in its child process
    evaluating.cancel()
    with pytest.raises(JobCancelledError):
        evaluating.wait()
    print("\nTraining timings (s):", {key: round(value, 1) for key, value in timings.items()})
    yield {"logic": logic, "training": training, "project": project, "dataset": dataset, "plan": plan,
           "killed": killed, "killError": str(killError.value), "cancelled": cancelled, "latest": latest,
           "cli": cli, "logged": logged, "evaluation": evaluation, "modelFolder": modelFolder, "root": root,
           "evaluating": evaluating, "returnedRunning": returnedRunning}
    if previous is None:
        os.environ.pop("AISEGMENTATION_MODELS_DIR", None)
    else:
        os.environ["AISEGMENTATION_MODELS_DIR"] = previous


def _trainAllOnTheCommandLine(project, zipPath):
    """`aisegmentation train all` on the project (dataset and plan done: kept): (exit code, stdout, stderr), and the
    log records of the run (INFO)."""
    from AISegmentationLib.CommandLine import Main as AISegmentationCLI

    records, handler, root = [], logging.Handler(), logging.getLogger()
    handler.emit = lambda record: records.append(record.getMessage())
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = AISegmentationCLI.main(["train", "all", "--project", project, "--epochs", str(EPOCHS), "--device",
                                           "cpu", "--scheduler", "local", "--workers", "2", "--model-name",
                                           "PhantomTest", "--export", str(zipPath)])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return (code, out.getvalue(), err.getvalue()), records


def _trainingLogic(logic):
    from AISegmentationLib.Training.TrainingLogic import TrainingLogic

    return TrainingLogic(lambda: logic.runtime, lambda: logic.aiEnvironments, logic.loadSegmentation,
                         logic.importLabelmap)


@pytest.mark.slow
def test_dataset_from_segmentation_nodes_with_homogenized_names(trained):
    dataset = trained["dataset"]
    assert dataset["labels"] == {"bright": 1, "dark": 2}  # one table: "Bright", "bright_sphere", "BRIGHT" are "bright"
    raw = os.path.join(trained["project"], "nnUNet_raw", dataset["name"])
    with open(os.path.join(raw, "dataset.json"), encoding="utf-8") as file:
        datasetJson = json.load(file)
    assert datasetJson["labels"] == {"background": 0, "bright": 1, "dark": 2}
    assert datasetJson["channel_names"] == {"0": "CT"} and datasetJson["numTraining"] == 6
    assert len(dataset["test"]) == 1 and len(os.listdir(os.path.join(raw, "imagesTr"))) == 6
    assert sorted(os.listdir(os.path.join(raw, "labelsTs"))) == [f"{dataset['test'][0]}.nii.gz"]
    renamed = dataset["cases"]["phantom301"]["renamed"]
    assert ("bright_sphere", "bright") in [tuple(pair) for pair in renamed]
    report = open(os.path.join(trained["project"], "dataset-report.html"), encoding="utf-8").read()
    assert "bright_sphere → bright" in report and "phantom306" in report


@pytest.mark.slow
def test_plan_is_shown(trained):
    configuration = trained["plan"]["configurations"]["3d_fullres"]
    assert configuration["patchSize"] == [32, 32, 32] and configuration["features"] == [4, 8, 16]
    assert configuration["spacing"] == [1.0, 1.0, 1.0]
    splits = os.path.join(trained["project"], "nnUNet_preprocessed", trained["dataset"]["name"], "splits_final.json")
    assert len(json.load(open(splits, encoding="utf-8"))) == 2


@pytest.mark.slow
def test_killed_and_cancelled_folds_resume_in_parallel_on_a_two_worker_local_cluster(trained):
    """`train all` on the command line: the dataset and the plan kept, both folds resumed from their checkpoints at
    once on a 2-worker LocalCluster (one fold per worker), one line per epoch, then evaluated."""
    assert "killed" in trained["killError"]
    assert trained["latest"] == [True, True]  # the last finished epoch's checkpoint was kept, loadable
    code, out, err = trained["cli"]
    assert code == 0, err
    assert any("folds [0, 1]" in line and "on the Dask cluster local" in line for line in trained["logged"])
    epochs = trained["training"].trainingState(trained["project"])["fit"]["epochs"]
    for fold in (0, 1):
        numbers = [record["epoch"] for record in epochs[f"3d_fullres fold {fold}"]]
        assert numbers[0] >= 2 and numbers[-1] == EPOCHS  # continued, not restarted
        assert f"fold {fold} epoch {EPOCHS}/{EPOCHS}: train loss" in out
        assert os.path.isfile(os.path.join(trained["modelFolder"], f"fold_{fold}", "checkpoint_final.pth"))
    record = epochs["3d_fullres fold 1"][-1]
    assert {"trainLoss", "validationLoss", "pseudoDice", "seconds"} <= set(record) and len(record["pseudoDice"]) == 2
    assert "3d_fullres fold 0 bright: Dice" in out and "Exported" in out


@pytest.mark.slow
def test_evaluate_is_a_background_job_that_cancels(trained):
    """The panel's Evaluate: the job returns at once (nnU-Net's steps in a child process), Cancel ends it and nothing
    is registered or recorded."""
    from AISegmentationLib.Backends.NnUNet.NnUNetTrainedModels import trainedModels

    assert trained["returnedRunning"] and trained["evaluating"].state == "cancelled"
    assert "Cancelled" not in trainedModels()
    assert trained["training"].trainingState(trained["project"])["evaluate"]["modelName"] == "PhantomTest"


@pytest.mark.slow
def test_cross_validation_report_and_registered_model(trained):
    evaluation = trained["evaluation"]
    perFold = evaluation["perFold"]
    assert {(row["fold"], row["structure"]) for row in perFold} == {(f, s) for f in (0, 1) for s in ("bright", "dark")}
    assert all(row["dice"] > 0.5 for row in perFold), perFold
    report = os.path.join(trained["project"], evaluation["reports"]["Cross-validation report"])
    assert os.path.isfile(report) and "fold0-" in open(report, encoding="utf-8").read()
    assert evaluation["best"]["diceBefore"] > 0.5
    assert evaluation["test"] and os.path.isfile(os.path.join(trained["project"], "training-report.html"))
    models = trained["logic"].backendOptions("nnunet")  # the backend's declarations are untouched
    assert models[0].name == "modelFolders"
    from AISegmentationLib.Backends.NnUNet.NnUNetTrainedModels import trainedModels

    entry = trainedModels()["PhantomTest"]
    assert entry["folder"] == trained["modelFolder"] and entry["provenance"]["folds"] == [0, 1]
    assert set(entry["provenance"]["crossValidationDice"]) == {"bright", "dark"}


@pytest.mark.slow
def test_held_out_phantom_segmented_by_the_new_model(trained):
    logic = trained["logic"]
    case, truth = phantomCase(logic, 999)
    segmentation = logic.runBackend("nnunet", case["volumes"], modelFolders=["PhantomTest"], device="cpu", tta=False)
    names = segmentation.GetSegmentation()
    for value, name in ((1, "bright"), (2, "dark")):
        segmentId = names.GetSegmentIdBySegmentName(name)
        mask = logic.segmentArray(segmentation, segmentId, case["volumes"])
        score = dice(mask.astype(bool), truth == value)
        print(f"\nHeld-out phantom Dice {name}: {score:.3f}")
        assert score >= 0.9, (name, score)


@pytest.mark.slow
def test_exported_zip_is_accepted_by_the_offline_import(trained):
    logic = trained["logic"]
    zipPath = trained["root"] / "PhantomTest.zip"  # `train all --export`
    names = zipfile.ZipFile(zipPath).namelist()
    assert any(name.endswith("fold_1/checkpoint_final.pth") for name in names)
    assert not any("checkpoint_latest" in name or "validation" in name for name in names)
    folders = logic.importNnUNetModel(str(zipPath), str(trained["root"] / "imported"))
    model = logic.validateNnUNetModel(folders[0])
    assert model.labels == {1: "bright", 2: "dark"} and model.folds == [0, 1]


# Bad input: a clear error before anything runs, nothing written --------------------------------------------------

def _training(logic):
    return logic.training if hasattr(logic, "training") else _trainingLogic(logic)


def _refused(logic, project, message, **options):
    with pytest.raises(ValueError, match=message):
        _training(logic).buildTrainingDataset(project, **options)
    return project


def test_too_few_cases_for_the_folds(logic, tmp_path):
    cases = [phantomCase(logic, seed)[0] for seed in range(3)]
    _refused(logic, str(tmp_path / "p"), "5 folds need at least 10 training cases", cases=cases, mapping=MAPPING)
    assert not (tmp_path / "p").exists()


def test_image_without_segmentation(logic, tmp_path):
    cases = [phantomCase(logic, seed)[0] for seed in range(4)]
    cases[2]["segmentation"] = None
    _refused(logic, str(tmp_path / "p"), "phantom2' has an image and no segmentation", cases=cases, numberOfFolds=2,
             mapping=MAPPING)
    assert not (tmp_path / "p").exists()


def test_differing_channels(logic, tmp_path):
    cases = [phantomCase(logic, seed)[0] for seed in range(4)]
    cases[1]["volumes"] = [cases[1]["volumes"], cases[1]["volumes"]]
    _refused(logic, str(tmp_path / "p"), "phantom1' has 2 channel", cases=cases, numberOfFolds=2, mapping=MAPPING)


def test_missing_structure_is_reported_and_a_choice(logic, tmp_path):
    cases = [phantomCase(logic, seed)[0] for seed in range(5)]
    cases.append(phantomCase(logic, 9, names=["Bright"])[0])  # only one structure
    project = _refused(logic, str(tmp_path / "p"), "phantom9' lacks structure.*dark.*exclude", cases=cases,
                       numberOfFolds=2, mapping=MAPPING)
    assert not os.path.exists(project)
    dataset = _training(logic).buildTrainingDataset(project, cases=cases, numberOfFolds=2, mapping=MAPPING,
                                                    missingStructures="background")
    assert "phantom9" in dataset["training"] and any("phantom9" in m for m in dataset["messages"])
    other = str(tmp_path / "q")
    dataset = _training(logic).buildTrainingDataset(other, cases=cases, numberOfFolds=2, mapping=MAPPING,
                                                    missingStructures="exclude")
    assert "phantom9" not in dataset["training"] and len(dataset["training"]) == 5


def test_non_integer_label_map_in_a_manifest(logic, tmp_path):
    import SimpleITK as sitk

    rows = ["case,image,reference"]
    for index in range(4):
        channels, truth = build_tiny_models.phantomCase(index)
        labels = truth.astype(np.float32) + (0.5 if index == 3 else 0.0)
        for name, array in ((f"img{index}.nii.gz", channels[0]), (f"lab{index}.nii.gz", labels)):
            sitk.WriteImage(sitk.GetImageFromArray(array), str(tmp_path / name))
        rows.append(f"c{index},img{index}.nii.gz,lab{index}.nii.gz")
    (tmp_path / "cohort.csv").write_text("\n".join(rows) + "\n")
    _refused(logic, str(tmp_path / "p"), "c3': the label map .* is not integer", manifest=str(tmp_path / "cohort.csv"),
             numberOfFolds=2)
    assert not (tmp_path / "p").exists()
    (tmp_path / "nolabel.csv").write_text("case,image,reference\nc0,img0.nii.gz,lab0.nii.gz\nc1,img1.nii.gz,\n")
    _refused(logic, str(tmp_path / "p"), "c1 of .* have an image and no label map", manifest=str(
        tmp_path / "nolabel.csv"), numberOfFolds=2)


def test_project_folder_holding_another_dataset(logic, tmp_path):
    project = tmp_path / "p"
    (project / "nnUNet_raw" / "Dataset123_Other").mkdir(parents=True)
    cases = [phantomCase(logic, seed)[0] for seed in range(4)]
    _refused(logic, str(project), "holds another dataset .*Dataset123_Other", cases=cases, numberOfFolds=2,
             mapping=MAPPING)
    assert os.listdir(project / "nnUNet_raw") == ["Dataset123_Other"]
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.docx").write_text("mine")
    _refused(logic, str(tmp_path / "notes"), "is not empty and is no training project", cases=cases,
             numberOfFolds=2, mapping=MAPPING)


# The memory estimate before a fit ---------------------------------------------------------------------------------

DEFAULT_3D = {"patchSize": [128, 128, 128], "batchSize": 2, "features": [32, 64, 128, 256, 320, 320]}


def test_training_memory_estimate_warns_and_refuses_what_cannot_fit():
    from AISegmentationLib.Backends.Jobs.MemoryEstimate import GIB
    from AISegmentationLib.Training.TrainingMemory import estimateTrainingMemory

    tiny = {"patchSize": [32, 32, 32], "batchSize": 2, "features": [4, 8, 16]}
    assert estimateTrainingMemory(tiny, 1, "cpu", availableBytes=4 * GIB, totalBytes=8 * GIB).messages == []
    gpu = estimateTrainingMemory(DEFAULT_3D, 1, "cuda", availableBytes=24 * GIB, totalBytes=24 * GIB)
    assert 6 * GIB < gpu.gpuBytes < 12 * GIB and gpu.messages == []  # nnU-Net's default is made for ~10 GB GPUs
    cpu = estimateTrainingMemory(DEFAULT_3D, 1, "cpu", availableBytes=8 * GIB, totalBytes=64 * GIB)
    assert cpu.peakBytes > 8 * GIB and "may fail" in cpu.messages[0] and "batch 2" in cpu.messages[0]
    parallel = estimateTrainingMemory(tiny, 1, "cpu", parallelFolds=2, availableBytes=None, totalBytes=None)
    assert parallel.peakBytes > 2 * estimateTrainingMemory(tiny, 1, "cpu", availableBytes=None).peakBytes - GIB
    with pytest.raises(ValueError, match="cannot fit"):
        estimateTrainingMemory(DEFAULT_3D, 1, "cuda", availableBytes=2 * GIB, totalBytes=2 * GIB)


def test_fit_that_surely_cannot_fit_is_refused_before_anything_starts(logic, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    huge = dict(DEFAULT_3D, patchSize=[512, 512, 512], batchSize=64)
    state = {"dataset": {"name": "Dataset777_Huge", "numberOfFolds": 2, "channels": ["CT"]},
             "plan": {"configurations": {"3d_fullres": huge}}}
    (project / "training.json").write_text(json.dumps(state), encoding="utf-8")
    with pytest.raises(ValueError, match="cannot fit"):
        _training(logic).startFitModel(str(project), device="cpu")
    assert sorted(os.listdir(project)) == ["training.json"]


def test_segmentations_alone_are_cases_on_the_volume_each_was_made_on(logic, tmp_path):
    """The panel's cases: checked segmentation nodes, each on its reference volume, the id from its name."""
    segmentations = [phantomCase(logic, 500 + index, index)[0]["segmentation"] for index in range(4)]
    dataset = _training(logic).buildTrainingDataset(str(tmp_path / "project"), cases=segmentations, numberOfFolds=2,
                                                    mapping=MAPPING)
    assert sorted(dataset["training"]) == [f"phantom{500 + index}_segmentation" for index in range(4)]
    orphan = logic.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "no volume")
    with pytest.raises(ValueError, match="names no volume"):
        _training(logic).buildTrainingDataset(str(tmp_path / "other"), cases=[orphan, *segmentations])
    assert not (tmp_path / "other").exists()
