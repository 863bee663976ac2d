#!/usr/bin/env python3
"""Build a tiny nnInteractive model from synthetic data, for tests and demos that need a real server on CPU.

The model has the layout both server generations load (``nninteractive-server --model-dir DIR --fold 0`` and the
legacy ``nninteractive-slicer-server`` through ``DevTools/start_nninteractive_server.py``): ``plans.json``,
``dataset.json``, ``inference_session_class.json`` (nnInteractive 1.x), ``inference_info.json`` (2.x), ``LICENSE``
and ``fold_0/checkpoint_final.pth``. The network is an nnU-Net ``PlainConvUNet`` with 8 input channels, as
nnInteractive feeds it: the normalized image plus 7 interaction channels (previous segmentation, box/lasso +/-,
point +/-, scribble +/-). It trains with a plain torch loop on random 32^3 scenes of bright ellipsoids: a positive
prompt selects the object it touches, a negative prompt removes it, the previous segmentation is kept.

Run it with a Python that has torch and dynamic_network_architectures (the current server's environment does):
    python DevTools/build_tiny_nninteractive.py --output DIR [--iterations 700]
With the defaults (seed 0, one thread) the model is the same on every machine with the same torch build; it takes
about 6 minutes on one core (validation Dice about 0.77 on random scenes; the interactive tests need Dice >= 0.9 on
the two-spheres scene, which it reaches).
Without --output the folder is $AISEGMENTATION_TINY_MODELS_DIR/nnInteractiveTiny (default build/tiny-models).
An existing, complete model folder is reused (pass --force to rebuild).
"""

import argparse
import fcntl
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

MODEL_NAME = "nnInteractiveTiny_v1"
PATCH = 32  # training scenes
# The servers' patch (plans.json). The network is fully convolutional, so it runs on patches larger than its training
# scenes; nnInteractive 2.x plans refinement boxes with a 24-voxel margin per side, which needs patches above 48.
INFERENCE_PATCH = 64
FEATURES = [8, 16, 32, 64]
POINT_RADIUS = 4
DECAY = 0.9
# Interaction channels (after the image channel), as nnInteractive's default channel mapping orders them.
PREV, BOX_POS, BOX_NEG, POINT_POS, POINT_NEG, SCRIBBLE_POS, SCRIBBLE_NEG = range(7)


def defaultModelDir():
    root = os.environ.get("AISEGMENTATION_TINY_MODELS_DIR") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "tiny-models")
    return os.path.join(root, MODEL_NAME)


def isCompleteModel(folder):
    return os.path.isfile(os.path.join(folder, "fold_0", "checkpoint_final.pth")) and os.path.isfile(
        os.path.join(folder, "build_info.json"))


# Model folder files ---------------------------------------------------------------------------------------------

def architecture():
    stages = len(FEATURES)
    return {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": stages, "features_per_stage": FEATURES, "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * stages, "strides": [[1, 1, 1]] + [[2, 2, 2]] * (stages - 1),
            "n_conv_per_stage": [2] * stages, "n_conv_per_stage_decoder": [2] * (stages - 1), "conv_bias": True,
            # No normalization layers: nnInteractive never calls eval() and runs patches larger than the training
            # scenes, so instance/batch statistics would differ between training and serving.
            "norm_op": None, "norm_op_kwargs": None,
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def plans():
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    return {
        "dataset_name": "Dataset999_TinyInteractive", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [INFERENCE_PATCH] * 3,
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {"mean": 0.0, "std": 1.0, "median": 0.0,
                                                              "min": -5.0, "max": 5.0, "percentile_00_5": -3.0,
                                                              "percentile_99_5": 3.0}},
        "configurations": {"3d_fullres": {
            "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 4, "patch_size": [INFERENCE_PATCH] * 3,
            "median_image_size_in_voxels": [INFERENCE_PATCH] * 3,
            "spacing": [1.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"],
            "use_mask_for_norm": [False], "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": resampling,
            "resampling_fn_seg_kwargs": dict(resampling, is_seg=True, order=1),
            "resampling_fn_probabilities_kwargs": dict(resampling, order=1),
            "architecture": architecture(), "batch_dice": False,
        }},
    }


def runtimeSettings():
    return {"point_radius": POINT_RADIUS, "preferred_scribble_thickness": [2, 2, 2], "interaction_decay": DECAY,
            "pad_mode_image": "constant"}


def writeModelFiles(folder, stateDict, info):
    import torch

    os.makedirs(os.path.join(folder, "fold_0"), exist_ok=True)
    files = {
        "plans.json": plans(),
        "dataset.json": {"channel_names": {"0": "image"}, "labels": {"background": 0, "object": 1},
                         "numTraining": 0, "file_ending": ".nii.gz"},
        "inference_session_class.json": runtimeSettings(),
        "inference_info.json": dict(runtimeSettings(), supported_interactions={
            "points": True, "bbox2d": True, "bbox3d": True, "scribble": True, "lasso": True}),
        "build_info.json": info,
    }
    for name, content in files.items():
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1)
    with open(os.path.join(folder, "LICENSE"), "w", encoding="utf-8") as f:
        f.write("Apache-2.0\nSynthetic test model built by AISegmentation's DevTools/build_tiny_nninteractive.py\n")
    checkpoint = {"network_weights": stateDict, "trainer_name": "nnInteractiveTrainer_stub",
                  "init_args": {"configuration": "3d_fullres"}}
    torch.save(checkpoint, os.path.join(folder, "fold_0", "checkpoint_final.pth"))


def buildNetwork():
    import importlib

    import torch

    arch = architecture()
    kwargs = dict(arch["arch_kwargs"])
    for key in arch["_kw_requires_import"]:
        if kwargs[key] is not None:
            moduleName, className = kwargs[key].rsplit(".", 1)
            kwargs[key] = getattr(importlib.import_module(moduleName), className)
    moduleName, className = arch["network_class_name"].rsplit(".", 1)
    networkClass = getattr(importlib.import_module(moduleName), className)
    network = networkClass(input_channels=8, num_classes=2, deep_supervision=False, **kwargs)
    for module in network.modules():
        if isinstance(module, torch.nn.Conv3d):
            torch.nn.init.kaiming_normal_(module.weight, a=1e-2)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    return network


# Synthetic scenes ------------------------------------------------------------------------------------------------

class SceneGenerator:
    """Random 32^3 scenes: ellipsoids on a noisy background, prompts, and the segmentation they ask for."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.grid = np.stack(np.meshgrid(*[np.arange(PATCH)] * 3, indexing="ij")).astype(np.float32)

    def blobs(self, count):
        masks, centers = [], []
        occupied = np.zeros((PATCH,) * 3, bool)
        for _ in range(count * 6):
            if len(masks) == count:
                break
            center = self.rng.uniform(5, PATCH - 5, 3)
            radii = self.rng.uniform(3.5, 8.0, 3)
            distance = np.sqrt(sum(((g - c) / r) ** 2 for g, c, r in zip(self.grid, center, radii)))
            mask = distance <= 1.0
            grown = distance <= 1.0 + 3.0 / radii.min()
            if mask.sum() < 30 or (grown & occupied).any():
                continue
            occupied |= grown
            masks.append(mask)
            centers.append(center)
        return masks, centers

    def image(self, masks):
        rng = self.rng
        background = rng.uniform(-50, 50)
        image = np.full((PATCH,) * 3, background, np.float32)
        for mask in masks:
            image[mask] = background + rng.choice([-1, 1], p=[0.15, 0.85]) * rng.uniform(60, 250)
        image += rng.normal(0, rng.uniform(2, 25), image.shape).astype(np.float32)
        image = (image - image.mean()) / max(image.std(), 1e-3)
        return image * rng.uniform(0.7, 1.4) + rng.uniform(-0.4, 0.4)

    def pointInside(self, mask):
        inside = np.argwhere(mask)
        return inside[self.rng.integers(len(inside))]

    def point(self, mask):
        distance = np.sqrt(((self.grid - self.pointInside(mask)[:, None, None, None]) ** 2).sum(0))
        return np.clip((POINT_RADIUS + 1 - distance) / (POINT_RADIUS + 1), 0, 1)

    def sliceThrough(self, mask):
        axis = int(self.rng.integers(3))
        index = int(self.pointInside(mask)[axis])
        return axis, index

    def box(self, masks, threeD=False):
        union = np.any(masks, axis=0)
        channel = np.zeros(union.shape, np.float32)
        axis, index = self.sliceThrough(masks[0])
        for _ in range(10):
            if all(np.take(mask, index, axis).any() for mask in masks):
                break
            axis, index = self.sliceThrough(masks[0])
        else:
            threeD = True
        if threeD:
            selection = np.argwhere(union)
        else:
            selection = np.argwhere(np.take(union, index, axis))
        low = np.maximum(selection.min(0) - self.rng.integers(0, 3, selection.shape[1]), 0)
        high = np.minimum(selection.max(0) + 1 + self.rng.integers(0, 3, selection.shape[1]), PATCH)
        region = [slice(a, b) for a, b in zip(low, high)]
        if not threeD:
            region.insert(axis, slice(index, index + 1))
        channel[tuple(region)] = 1
        return channel

    def lasso(self, mask):
        from scipy import ndimage

        axis, index = self.sliceThrough(mask)
        section = np.take(mask, index, axis)
        section = ndimage.binary_dilation(section, iterations=int(self.rng.integers(0, 3)))
        channel = np.zeros(mask.shape, np.float32)
        region = [slice(None)] * 3
        region[axis] = index
        channel[tuple(region)] = section
        return channel

    def scribble(self, mask):
        from scipy import ndimage

        axis, index = self.sliceThrough(mask)
        section = np.take(mask, index, axis)
        core = ndimage.binary_erosion(section, iterations=1)
        core = core if core.any() else section
        points = np.argwhere(core)
        start, end = points[self.rng.integers(len(points))], points[self.rng.integers(len(points))]
        line = np.zeros(section.shape, bool)
        for t in np.linspace(0, 1, 40):
            line[tuple(np.round(start + t * (end - start)).astype(int))] = True
        line = ndimage.binary_dilation(line) & section
        channel = np.zeros(mask.shape, np.float32)
        region = [slice(None)] * 3
        region[axis] = index
        channel[tuple(region)] = line
        return channel

    def positivePrompt(self, channels, mask, intensity):
        kind = self.rng.choice(["point", "box", "box3d", "lasso", "scribble"], p=[0.4, 0.2, 0.1, 0.15, 0.15])
        if kind == "point":
            channels[POINT_POS] = np.maximum(channels[POINT_POS], self.point(mask) * intensity)
        elif kind in ("box", "box3d"):
            channels[BOX_POS] = np.maximum(channels[BOX_POS], self.box([mask], kind == "box3d") * intensity)
        elif kind == "lasso":
            channels[BOX_POS] = np.maximum(channels[BOX_POS], self.lasso(mask) * intensity)
        else:
            channels[SCRIBBLE_POS] = np.maximum(channels[SCRIBBLE_POS], self.scribble(mask) * intensity)

    def negativePrompt(self, channels, mask, intensity):
        if self.rng.random() < 0.7:
            channels[POINT_NEG] = np.maximum(channels[POINT_NEG], self.point(mask) * intensity)
        else:
            channels[SCRIBBLE_NEG] = np.maximum(channels[SCRIBBLE_NEG], self.scribble(mask) * intensity)

    def previous(self, masks):
        from scipy import ndimage

        union = np.any(masks, axis=0)
        change = self.rng.integers(-1, 2)
        if change < 0:
            union = ndimage.binary_erosion(union)
        elif change > 0:
            union = ndimage.binary_dilation(union)
        return union.astype(np.float32)

    def sample(self):
        """(input 8 x P^3 float32, target P^3 int64)."""
        rng = self.rng
        masks, _ = self.blobs(int(rng.integers(2, 5)))
        if len(masks) < 2:
            return self.sample()
        channels = np.zeros((7,) + masks[0].shape, np.float32)
        order = list(rng.permutation(len(masks)))
        scenario = rng.random()
        if scenario < 0.45:                       # new object from one or two positive prompts
            target = [order[0]]
            for age in range(int(rng.integers(1, 3)))[::-1]:
                self.positivePrompt(channels, masks[order[0]], DECAY ** age)
        elif scenario < 0.6:                      # a box over two objects selects both; a negative removes one
            first, second = order[0], order[1]
            both = [masks[first], masks[second]]
            channels[BOX_POS] = self.box(both, threeD=rng.random() < 0.3) * DECAY
            target = [first, second]
            if rng.random() < 0.6:
                self.negativePrompt(channels, masks[second], 1.0)
                target = [first]
        else:                                     # continue from a previous segmentation
            keep = order[:int(rng.integers(1, 3))]
            channels[PREV] = self.previous([masks[i] for i in keep])
            action = rng.random()
            if action < 0.4 and len(order) > len(keep):
                added = order[len(keep)]
                self.positivePrompt(channels, masks[added], 1.0)
                target = keep + [added]
            elif action < 0.8:
                removed = keep[-1]
                self.negativePrompt(channels, masks[removed], 1.0)
                target = keep[:-1]
            else:
                self.positivePrompt(channels, masks[keep[0]], 1.0)
                target = keep
        label = np.zeros(masks[0].shape, np.int64)
        for index in target:
            label[masks[index]] = 1
        image = self.image(masks)
        return np.concatenate([image[None], channels]), label


# Training --------------------------------------------------------------------------------------------------------

def batch(generator, size):
    inputs, labels = zip(*(generator.sample() for _ in range(size)))
    return np.stack(inputs), np.stack(labels)


def diceLoss(logits, labels):
    import torch

    probabilities = torch.softmax(logits, 1)[:, 1]
    target = (labels == 1).float()
    intersection = (probabilities * target).sum((1, 2, 3))
    return 1 - ((2 * intersection + 1) / (probabilities.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)).mean()


def train(iterations, batchSize, seed, maxMinutes, threads=1):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
    torch.set_flush_denormal(True)  # denormal floats slow CPU training down by an order of magnitude
    network = buildNetwork()
    optimizer = torch.optim.AdamW(network.parameters(), lr=2e-3, weight_decay=1e-4)
    generator = SceneGenerator(seed)
    start = time.time()
    done = 0
    for done in range(1, iterations + 1):
        for group in optimizer.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * done / iterations))
        inputs, labels = (torch.from_numpy(a) for a in batch(generator, batchSize))
        logits = network(inputs)
        loss = torch.nn.functional.cross_entropy(logits, labels) + diceLoss(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 12)
        optimizer.step()
        if done % 50 == 0:
            logging.info("iteration %d/%d loss %.3f (%.0f s)", done, iterations, loss.item(), time.time() - start)
        if maxMinutes and time.time() - start > maxMinutes * 60:
            logging.warning("Stopping after %d iterations: time limit of %s minutes reached", done, maxMinutes)
            break
    return network, done, time.time() - start


def validate(network, seed, count=24):
    import torch

    generator = SceneGenerator(seed + 1000)
    inputs, labels = batch(generator, count)
    network.eval()
    with torch.no_grad():
        predictions = network(torch.from_numpy(inputs)).argmax(1).numpy()
    scores = []
    for prediction, label in zip(predictions, labels):
        total = prediction.sum() + label.sum()
        scores.append(1.0 if total == 0 else 2 * (prediction & label).sum() / total)
    return float(np.mean(scores))


def buildModel(folder, iterations=700, batchSize=4, seed=0, maxMinutes=None, threads=1):
    """Train and write the model folder atomically (a temporary sibling folder renamed at the end)."""
    network, done, seconds = train(iterations, batchSize, seed, maxMinutes, threads)
    dice = validate(network, seed)
    logging.info("Trained %d iterations in %.0f s; validation Dice %.3f", done, seconds, dice)
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=".building-", dir=parent)
    info = {"model": MODEL_NAME, "iterations": done, "seconds": round(seconds, 1), "validationDice": round(dice, 4),
            "seed": seed, "trainingPatch": PATCH, "patchSize": INFERENCE_PATCH,
            "features": FEATURES}
    writeModelFiles(temporary, {k: v.cpu() for k, v in network.state_dict().items()}, info)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.replace(temporary, folder)
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default=None, help="model folder (default: %(default)s -> " + defaultModelDir())
    parser.add_argument("--iterations", type=int, default=700)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="stop training after this long")
    parser.add_argument("--force", action="store_true", help="rebuild even when the folder holds a model")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: deterministic, and several threads slow down by an order of "
                             "magnitude on a machine busy with other work, e.g. a server environment installing)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    folder = os.path.abspath(args.output or defaultModelDir())
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with open(folder + ".lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run sharing the folder builds it only once
        if isCompleteModel(folder) and not args.force:
            logging.info("Model already built: %s", folder)
        else:
            buildModel(folder, args.iterations, args.batch_size, args.seed, args.max_minutes, args.threads)
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
