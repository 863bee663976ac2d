"""Child side of the training pipeline: nnU-Net v2's own planning, training, cross-validation summary and prediction,
run by Backends/Child/ChildWorker.py in the "nnunet" environment (never imports slicer).

The request's ``options["action"]`` is one of:

- ``plan``: fingerprint, experiment planning (optionally shrunk to a tiny network: ``planOverrides``), preprocessing
  of the chosen configurations, and a seeded k-fold split (nnU-Net's ``generate_crossval_split``) written to
  ``splits_final.json``;
- ``fit``: one fold of ``nnUNetTrainer`` with the requested schedule (epochs, iterations), a checkpoint after every
  epoch (written under a temporary name, then renamed: a kill at any moment leaves a checkpoint that loads), resumed
  from ``checkpoint_latest.pth`` when there is one (a finished fold asked for more epochs goes on from
  ``checkpoint_final.pth``), then nnU-Net's validation (the cross-validation predictions);
  one ``epoch`` message per epoch with nnU-Net's logged train / validation loss and pseudo-Dice;
- ``best``: nnU-Net's ``find_best_configuration`` (cross-validation accumulated, ensembles, the post-processing
  decision);
- ``predict``: a trained model folder on a folder of images (the held-out test split).

nnU-Net's folders come from the environment ($nnUNet_raw, $nnUNet_preprocessed, $nnUNet_results), set by the parent.
"""

import json
import os

from ChildProtocol import UserError, packageVersion, watchOutput
from ChildTorch import deviceName

TRAINER = "nnUNetTrainer"


def probe():
    import nnunetv2.experiment_planning.plan_and_preprocess_api  # noqa: F401 - the import is the check

    return {"versions": {"nnunetv2": packageVersion("nnunetv2"), "torch": packageVersion("torch")}}


def _readJson(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def _writeJsonAtomically(path, value):
    temporary = f"{path}.tmp-aisegmentation-{os.getpid():08x}"
    with open(temporary, "w", encoding="utf-8") as file:
        json.dump(value, file, indent=2)
    os.replace(temporary, path)


def plan(options, channel):
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                      preprocess)
    from nnunetv2.utilities.crossval_split import generate_crossval_split

    datasetId, datasetName = options["datasetId"], options["datasetName"]
    channel.stage(0, 25, "Fingerprint (nnU-Net)")
    extract_fingerprints([datasetId], num_processes=1, check_dataset_integrity=True, show_progress_bar=False)
    channel.stage(25, 40, "Planning (nnU-Net)")
    plan_experiments([datasetId])
    folder = os.path.join(os.environ["nnUNet_preprocessed"], datasetName)
    plansPath = os.path.join(folder, "nnUNetPlans.json")
    plans = _readJson(plansPath)
    available = list(plans["configurations"])
    missing = [name for name in options["configurations"] if name not in available]
    if missing:
        raise UserError(f"nnU-Net planned no configuration {', '.join(missing)} for this dataset (it planned: "
                        f"{', '.join(available)}); 3d_lowres exists only for large images")
    overrides = options.get("planOverrides") or {}
    for name, configuration in plans["configurations"].items():
        if overrides.get("patchSize"):
            configuration["patch_size"] = list(overrides["patchSize"])[-len(configuration["patch_size"]):]
        if overrides.get("batchSize"):
            configuration["batch_size"] = int(overrides["batchSize"])
        if overrides.get("architecture") and "architecture" in configuration:
            configuration["architecture"]["arch_kwargs"].update(overrides["architecture"])
    _writeJsonAtomically(plansPath, plans)
    channel.stage(40, 95, "Preprocessing (nnU-Net)")
    configurations = [name for name in options["configurations"] if name != "3d_cascade_fullres"]
    preprocess([datasetId], configurations=configurations, num_processes=[1] * len(configurations),
               show_progress_bar=False)
    identifiers = sorted(name[: -len(".nii.gz")] for name in os.listdir(os.path.join(
        os.environ["nnUNet_raw"], datasetName, "labelsTr")) if name.endswith(".nii.gz"))
    splits = generate_crossval_split(identifiers, seed=options.get("seed", 12345), n_splits=options["numberOfFolds"])
    _writeJsonAtomically(os.path.join(folder, "splits_final.json"), splits)
    channel.stage(95, 100, "Plan ready")
    return {"plansFile": plansPath, "splits": splits}


def _atomicCheckpoints(trainer):
    """nnU-Net writes a checkpoint in place (torch.save): a kill during the write would leave a broken file. Each
    one is written under a temporary name and renamed (an instance attribute: the class name, which the
    checkpoint records as trainer_name, stays nnU-Net's)."""
    original = trainer.save_checkpoint

    def saveCheckpoint(filename):
        temporary = f"{filename}.tmp-aisegmentation-{os.getpid():08x}"
        original(temporary)
        if os.path.isfile(temporary):
            os.replace(temporary, filename)

    trainer.save_checkpoint = saveCheckpoint


def _reportEpochs(trainer, channel, fold):
    """After nnU-Net's own on_epoch_end (which logs and checkpoints), send its logged values as an epoch message."""
    original = trainer.on_epoch_end

    def onEpochEnd():
        original()
        def last(key):
            return trainer.logger.get_value(key, step=-1)

        epoch = trainer.current_epoch  # nnU-Net has counted the finished epoch already
        record = {"fold": fold, "epoch": epoch, "epochs": trainer.num_epochs,
                  "trainLoss": float(last("train_losses")), "validationLoss": float(last("val_losses")),
                  "pseudoDice": [float(value) for value in last("dice_per_class_or_region")],
                  "emaPseudoDice": float(last("ema_fg_dice")),
                  "seconds": float(last("epoch_end_timestamps") - last("epoch_start_timestamps"))}
        channel.send("epoch", **record)
        channel.progress(5 + 85 * epoch / trainer.num_epochs,
                         f"Fold {fold}: epoch {epoch}/{trainer.num_epochs}, train loss {record['trainLoss']:.4f}, "
                         f"validation loss {record['validationLoss']:.4f}, pseudo-Dice "
                         f"{', '.join(f'{value:.3f}' for value in record['pseudoDice'])}")

    trainer.on_epoch_end = onEpochEnd


def _trainerClass(name):
    if name == TRAINER:
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

        return nnUNetTrainer
    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    found = recursive_find_python_class(os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer"), name,
                                        "nnunetv2.training.nnUNetTrainer")
    if found is None:
        raise UserError(f"nnU-Net has no trainer class '{name}'")
    return found


def fit(options, channel):
    import torch

    datasetName, configuration, fold = options["datasetName"], options["configuration"], options["fold"]
    preprocessed = os.path.join(os.environ["nnUNet_preprocessed"], datasetName)
    plans = _readJson(os.path.join(preprocessed, "nnUNetPlans.json"))
    datasetJson = _readJson(os.path.join(preprocessed, "dataset.json"))
    plans["continue_training"] = False
    torch.manual_seed(options.get("seed", 0))
    channel.stage(0, 5, f"Fold {fold}: starting nnU-Net's trainer")
    trainer = _trainerClass(options["trainer"])(plans, configuration, fold, datasetJson,
                                                device=torch.device(deviceName(options["device"])))
    schedule = options["schedule"]
    trainer.num_epochs = schedule["epochs"]
    trainer.num_iterations_per_epoch = schedule["iterationsPerEpoch"]
    trainer.num_val_iterations_per_epoch = schedule["validationIterations"]
    if schedule.get("initialLearningRate"):
        trainer.initial_lr = schedule["initialLearningRate"]
    trainer.save_every = 1
    _atomicCheckpoints(trainer)
    _reportEpochs(trainer, channel, fold)
    final = os.path.join(trainer.output_folder, "checkpoint_final.pth")
    latest = os.path.join(trainer.output_folder, "checkpoint_latest.pth")
    resumed = None
    if os.path.isfile(final):
        trainer.load_checkpoint(final)
        resumed = "final"
        if trainer.current_epoch < trainer.num_epochs:  # more epochs asked of a finished fold: it goes on
            resumed = f"epoch {trainer.current_epoch}"
            channel.log(f"Fold {fold}: training on from {final} at epoch {trainer.current_epoch}")
    elif os.path.isfile(latest):
        trainer.load_checkpoint(latest)
        resumed = f"epoch {trainer.current_epoch}"
        channel.log(f"Fold {fold}: resuming from {latest} at epoch {trainer.current_epoch}")
    if resumed != "final":
        trainer.run_training()
    channel.stage(90, 100, f"Fold {fold}: validation (cross-validation predictions)")
    trainer.perform_actual_validation(False)
    summary = os.path.join(trainer.output_folder, "validation", "summary.json")
    return {"outputFolder": trainer.output_folder, "resumed": resumed, "epochs": trainer.num_epochs,
            "validationSummary": summary if os.path.isfile(summary) else None}


def best(options, channel):
    from nnunetv2.evaluation.find_best_configuration import find_best_configuration

    channel.stage(0, 100, "nnU-Net: find_best_configuration and post-processing")
    models = [{"plans": "nnUNetPlans", "configuration": name, "trainer": options["trainer"]}
              for name in options["configurations"]]
    result = find_best_configuration(options["datasetId"], models, allow_ensembling=len(models) > 1,
                                     num_processes=1, overwrite=True, folds=tuple(options["folds"]), strict=True)
    return {"best": json.loads(json.dumps(result, default=str))}


def predict(options, channel):
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    channel.stage(0, 100, "Predicting the held-out cases")
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=True, device=torch.device(deviceName(options["device"])),
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.initialize_from_trained_model_folder(options["modelFolder"], tuple(options["folds"]),
                                                   "checkpoint_final.pth")
    predictor.predict_from_files(options["inputFolder"], options["outputFolder"], save_probabilities=False,
                                 overwrite=True, num_processes_preprocessing=1, num_processes_segmentation_export=1)
    return {"outputFolder": options["outputFolder"]}


ACTIONS = {"plan": plan, "fit": fit, "best": best, "predict": predict}


def run(request, channel):
    watchOutput(channel)
    options = request["options"]
    action = ACTIONS.get(options.get("action"))
    if action is None:
        raise UserError(f"Unknown training action {options.get('action')!r}; known: {', '.join(ACTIONS)}")
    result = action(options, channel)
    return {"info": {"versions": {"nnunetv2": packageVersion("nnunetv2"), "torch": packageVersion("torch")}},
            **result}
