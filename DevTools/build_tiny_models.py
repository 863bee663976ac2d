"""Builds tiny, honestly trained test models for the AI backends from synthetic phantoms generated here.

Output folder (``--output``, default ``$AISEGMENTATION_TINY_MODELS_DIR`` or ``output/tiny_models``)::

    nnUNet_results/Dataset990_AISegPhantom/nnUNetTrainer__nnUNetPlans__3d_fullres/    CT phantom: bright + dark
        dataset.json, plans.json, fold_0/checkpoint_final.pth, fold_all/checkpoint_final.pth
    nnUNet_results/Dataset991_AISegTwoChannel/nnUNetTrainer__nnUNetPlans__3d_fullres/  channels T1, T2: lesion
        dataset.json, plans.json, fold_all/checkpoint_final.pth
    nnUNet_results/Dataset992_AISegPhantomB/nnUNetTrainer__nnUNetPlans__3d_fullres/    a second phantom model (the
        fold-"all" network of Dataset990 packaged as its own model folder, fold_0), for ensembling
    totalsegmentator/nnunet/results/Dataset297_TotalSegmentator_total_3mm_1559subj/...  task "total" --fast
    totalsegmentator/nnunet/results/Dataset298_TotalSegmentator_total_6mm_1559subj/...  --fastest, roi_subset crop
    manifest.json

The models are nnU-Net v2 networks planned, preprocessed and trained with nnunetv2's own code (plans shrunk to
3 stages with features [4, 8, 16], a few hundred iterations); the TotalSegmentator copies are the phantom network
placed in TotalSegmentator's weights layout (plans spacing 3 mm / 6 mm, labels named after its class map), so the
real ``totalsegmentator`` package runs end to end on them. The phantom's label 1 is bright (bone-like, 400-1000),
label 2 dark (air-like, -800 HU), on soft tissue (40 HU) with noise.

Runs with a Python that has nnunetv2 and torch (e.g. the isolated "nnunet" environment); numpy-only helpers
(:func:`phantomCase`) import without them. nnU-Net uses spawn pools, hence the ``__main__`` guard.
"""

import argparse
import json
import logging
import os
import shutil
import sys
import time

import numpy as np

BUILDER_VERSION = 6
PHANTOM_SPACING = (1.0, 1.0, 1.0)
PHANTOM_SHAPE = (40, 40, 40)
PHANTOM = {"id": 990, "name": "Dataset990_AISegPhantom", "channels": {"0": "CT"},
           "labels": {"background": 0, "bright_sphere": 1, "dark_sphere": 2}}
TWO_CHANNEL = {"id": 991, "name": "Dataset991_AISegTwoChannel", "channels": {"0": "T1", "1": "T2"},
               "labels": {"background": 0, "lesion": 1}}
TRAINER_FOLDER = "nnUNetTrainer__nnUNetPlans__3d_fullres"
TOTALSEG_TRAINER_FOLDER = "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"
# TotalSegmentator's weights folders (totalsegmentator.map_tasks_config.TASK_ID_WEIGHTS_CONFIGS) and spacing.
TOTALSEG_MODELS = {"Dataset297_TotalSegmentator_total_3mm_1559subj": 3.0,
                   "Dataset298_TotalSegmentator_total_6mm_1559subj": 6.0}
# Our phantom labels named as in totalsegmentator.map_to_binary.class_map["total"] (1: spleen, 2: kidney_right).
TOTALSEG_LABELS = {"background": 0, "spleen": 1, "kidney_right": 2}
TINY_ARCHITECTURE = {"n_stages": 3, "features_per_stage": [4, 8, 16], "kernel_sizes": [[3, 3, 3]] * 3,
                     "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "n_conv_per_stage": [2, 2, 2],
                     "n_conv_per_stage_decoder": [2, 2]}
DIRECTORY_VARIABLE = "AISEGMENTATION_TINY_MODELS_DIR"


def defaultOutputDir():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get(DIRECTORY_VARIABLE) or os.path.join(root, "output", "tiny_models")


def builtManifest(output, builderVersion, what="Tiny models"):
    """The path of output's manifest.json when it was written by this builder version (nothing to build), else None."""
    manifestPath = os.path.join(output, "manifest.json")
    if os.path.isfile(manifestPath):
        with open(manifestPath, encoding="utf-8") as file:
            if json.load(file).get("builderVersion") == builderVersion:
                logging.info("%s already built in %s", what, output)
                return manifestPath
    return None


def writeManifest(output, manifest):
    manifestPath = os.path.join(output, "manifest.json")
    with open(manifestPath, "w", encoding="utf-8") as file:
        json.dump(manifest, file, indent=2)
    return manifestPath


def builderArguments(argv, description, defaultOutput, addArguments):
    """A builder's command line: --output, its own arguments (addArguments(parser)), --force (forgets the manifest,
    so that buildAll builds again). Sets up logging; returns the arguments with output an absolute path."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=defaultOutput, help="folder for the models (default: %(default)s)")
    addArguments(parser)
    parser.add_argument("--force", action="store_true", help="rebuild even when the models are there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args.output = os.path.abspath(args.output)
    if args.force and os.path.isfile(os.path.join(args.output, "manifest.json")):
        os.remove(os.path.join(args.output, "manifest.json"))
    return args


def _ellipsoid(shape, center, radii):
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum(((axis - c) / r) ** 2 for axis, c, r in zip(grid, center, radii)) <= 1.0


def _randomEllipsoid(rng, shape, forbidden):
    """An ellipsoid of radius 6..9 voxels that overlaps no voxel of forbidden (tries a few placements)."""
    for _ in range(200):
        radii = rng.uniform(6.0, 9.0, 3)
        center = [rng.uniform(r + 1, n - r - 2) for r, n in zip(radii, shape)]
        mask = _ellipsoid(shape, center, radii)
        if not (mask & forbidden).any():
            return mask
    raise RuntimeError("Could not place a phantom ellipsoid")


def phantomCase(seed, shape=PHANTOM_SHAPE, twoChannel=False):
    """(list of KJI float32 channel images, KJI uint8 label image) of one synthetic case.

    CT phantom: label 1 = bright ellipsoid (400..1000, bone-like), label 2 = dark ellipsoid (~-800, air-like),
    background ~40 with noise.
    Two-channel phantom: label 1 = "lesion", bright only in channel T2; T1 shows a decoy of the same brightness
    elsewhere (labelled background), so a model is right only when it sees the channels in dataset.json order.
    """
    rng = np.random.default_rng(seed)
    label = np.zeros(shape, np.uint8)
    first = _randomEllipsoid(rng, shape, label.astype(bool))
    label[first] = 1
    second = _randomEllipsoid(rng, shape, first)
    if not twoChannel:
        label[second] = 2
        image = rng.normal(40.0, 25.0, shape)
        image[first] = rng.normal(rng.uniform(400.0, 1000.0), 60.0, int(first.sum()))
        image[second] = rng.normal(-800.0, 60.0, int(second.sum()))
        return [image.astype(np.float32)], label
    t1 = rng.normal(100.0, 15.0, shape)
    t2 = rng.normal(100.0, 15.0, shape)
    t2[first] = rng.normal(400.0, 30.0, int(first.sum()))
    t1[second] = rng.normal(400.0, 30.0, int(second.sum()))
    return [t1.astype(np.float32), t2.astype(np.float32)], label


def _writeImage(array, path, spacing=PHANTOM_SPACING, origin=(0.0, 0.0, 0.0)):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, path, True)


def writeRawDataset(rawRoot, dataset, numberOfCases, firstSeed):
    folder = os.path.join(rawRoot, dataset["name"])
    for sub in ("imagesTr", "labelsTr"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    twoChannel = len(dataset["channels"]) > 1
    for index in range(numberOfCases):
        channels, label = phantomCase(firstSeed + index, twoChannel=twoChannel)
        case = f"case_{index:03d}"
        for channel, image in enumerate(channels):
            _writeImage(image, os.path.join(folder, "imagesTr", f"{case}_{channel:04d}.nii.gz"))
        _writeImage(label, os.path.join(folder, "labelsTr", f"{case}.nii.gz"))
    with open(os.path.join(folder, "dataset.json"), "w", encoding="utf-8") as file:
        json.dump({"channel_names": dataset["channels"], "labels": dataset["labels"],
                   "numTraining": numberOfCases, "file_ending": ".nii.gz",
                   "name": dataset["name"], "description": "AISegmentation synthetic phantom (tiny test model)"},
                  file, indent=2)


def planAndPreprocess(dataset, preprocessedRoot):
    """nnU-Net's own fingerprint, planner and preprocessor, with the plans shrunk to a tiny network."""
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                      preprocess)

    extract_fingerprints([dataset["id"]], num_processes=1, check_dataset_integrity=True, show_progress_bar=False)
    plan_experiments([dataset["id"]])
    plansPath = os.path.join(preprocessedRoot, dataset["name"], "nnUNetPlans.json")
    with open(plansPath, encoding="utf-8") as file:
        plans = json.load(file)
    configuration = plans["configurations"]["3d_fullres"]
    plans["configurations"] = {"3d_fullres": configuration}
    configuration["patch_size"] = [32, 32, 32]
    configuration["batch_size"] = 2
    configuration["architecture"]["arch_kwargs"].update(TINY_ARCHITECTURE)
    with open(plansPath, "w", encoding="utf-8") as file:
        json.dump(plans, file, indent=2)
    preprocess([dataset["id"]], configurations=["3d_fullres"], num_processes=[1], show_progress_bar=False)


def train(dataset, preprocessedRoot, fold, epochs, iterationsPerEpoch):
    """nnUNetTrainer (the class name stored in the checkpoint must stay 'nnUNetTrainer'), shortened schedule."""
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    with open(os.path.join(preprocessedRoot, dataset["name"], "nnUNetPlans.json"), encoding="utf-8") as file:
        plans = json.load(file)
    with open(os.path.join(preprocessedRoot, dataset["name"], "dataset.json"), encoding="utf-8") as file:
        datasetJson = json.load(file)
    plans["continue_training"] = False  # as nnunetv2's run_training sets it
    trainer = nnUNetTrainer(plans, "3d_fullres", fold, datasetJson, device=torch.device("cpu"))
    trainer.num_epochs = epochs
    trainer.num_iterations_per_epoch = iterationsPerEpoch
    trainer.num_val_iterations_per_epoch = 2
    trainer.initial_lr = 2e-2
    trainer.save_every = epochs + 1
    trainer.run_training()


def packageAsSecondModel(modelFolder, target):
    """The fold-"all" network of modelFolder as fold_0 of another model folder (a second model to ensemble)."""
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, "fold_0"))
    for name in ("dataset.json", "plans.json"):
        shutil.copyfile(os.path.join(modelFolder, name), os.path.join(target, name))
    shutil.copyfile(os.path.join(modelFolder, "fold_all", "checkpoint_final.pth"),
                    os.path.join(target, "fold_0", "checkpoint_final.pth"))


def placeInTotalSegmentatorLayout(modelFolder, weightsRoot):
    """Copy the phantom's fold-"all" network into TotalSegmentator's weights folders (3 mm and 6 mm "total")."""
    for datasetFolder, spacing in TOTALSEG_MODELS.items():
        target = os.path.join(weightsRoot, datasetFolder, TOTALSEG_TRAINER_FOLDER)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(os.path.join(target, "fold_0"))
        shutil.copyfile(os.path.join(modelFolder, "fold_all", "checkpoint_final.pth"),
                        os.path.join(target, "fold_0", "checkpoint_final.pth"))
        with open(os.path.join(modelFolder, "plans.json"), encoding="utf-8") as file:
            plans = json.load(file)
        plans["dataset_name"] = datasetFolder
        plans["original_median_spacing_after_transp"] = [spacing] * 3
        plans["configurations"]["3d_fullres"]["spacing"] = [spacing] * 3
        with open(os.path.join(target, "plans.json"), "w", encoding="utf-8") as file:
            json.dump(plans, file, indent=2)
        with open(os.path.join(modelFolder, "dataset.json"), encoding="utf-8") as file:
            datasetJson = json.load(file)
        datasetJson.update({"labels": TOTALSEG_LABELS, "name": datasetFolder})
        with open(os.path.join(target, "dataset.json"), "w", encoding="utf-8") as file:
            json.dump(datasetJson, file, indent=2)


def buildAll(output, epochs=12, iterationsPerEpoch=25):
    """Build every tiny model into output (skipped when a manifest of this builder version is there)."""
    manifestPath = builtManifest(output, BUILDER_VERSION)
    if manifestPath:
        return manifestPath
    work = os.path.join(output, "work")
    shutil.rmtree(work, ignore_errors=True)
    results = os.path.join(output, "nnUNet_results")
    shutil.rmtree(results, ignore_errors=True)
    os.environ.update({"nnUNet_raw": os.path.join(work, "raw"), "nnUNet_preprocessed": os.path.join(work, "pre"),
                       "nnUNet_results": results, "nnUNet_n_proc_DA": "1", "nnUNet_compile": "false"})
    import torch

    torch.manual_seed(0)
    # One thread: tiny networks gain little from more, and OpenMP threads that wait for busy cores (another job on
    # a 2-core machine) slow training down tenfold.
    torch.set_num_threads(1)
    timings = {}
    for dataset, folds, seed in ((PHANTOM, (0, "all"), 100), (TWO_CHANNEL, ("all",), 200)):
        start = time.time()
        writeRawDataset(os.environ["nnUNet_raw"], dataset, numberOfCases=8, firstSeed=seed)
        os.environ["nnUNet_n_proc_DA"] = "1"
        planAndPreprocess(dataset, os.environ["nnUNet_preprocessed"])
        os.environ["nnUNet_n_proc_DA"] = "0"  # augment in this process (the planner needs it >= 1)
        for fold in folds:
            train(dataset, os.environ["nnUNet_preprocessed"], fold, epochs, iterationsPerEpoch)
        timings[dataset["name"]] = round(time.time() - start, 1)
    phantomModel = os.path.join(results, PHANTOM["name"], TRAINER_FOLDER)
    secondModel = os.path.join(results, "Dataset992_AISegPhantomB", TRAINER_FOLDER)
    packageAsSecondModel(phantomModel, secondModel)
    placeInTotalSegmentatorLayout(phantomModel, os.path.join(output, "totalsegmentator", "nnunet", "results"))
    shutil.rmtree(work, ignore_errors=True)
    manifest = {"builderVersion": BUILDER_VERSION, "seconds": timings, "torch": torch.__version__,
                "phantomModel": phantomModel, "secondPhantomModel": secondModel,
                "twoChannelModel": os.path.join(results, TWO_CHANNEL["name"], TRAINER_FOLDER),
                "totalSegmentatorHome": os.path.join(output, "totalsegmentator")}
    return writeManifest(output, manifest)


def _trainingArguments(parser):
    parser.add_argument("--epochs", type=int, default=12, help="training epochs per model (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=25, help="iterations per epoch (default: %(default)s)")


def main(argv=None):
    args = builderArguments(argv, __doc__, defaultOutputDir(), _trainingArguments)
    start = time.time()
    manifestPath = buildAll(args.output, args.epochs, args.iterations)
    logging.info("Tiny models in %s (%.1f s)", args.output, time.time() - start)
    print(manifestPath)
    return 0


if __name__ == "__main__":
    sys.exit(main())
