"""Builds tiny, honestly trained MONAI Auto3DSeg test models (SegResNetDS) from synthetic phantoms generated here.

Output folder (``--output``, default ``$AISEGMENTATION_TINY_MODELS_DIR/monai`` or ``output/tiny_models/monai``)::

    phantom-v1.0.0.zip      CT phantom: bright + dark ellipsoid ("range" normalization), one input
    two-input-v1.0.0.zip    inputs T1, T2 ("meanstd" each): the lesion is bright in T2, a decoy in T1
    manifest.json           file names, SHA-256 and sizes of the zips, held-out Dice, seconds

Each zip has the layout of the MONAI Auto3DSeg models: ``model.pt`` = {"config": plain Python types, "state_dict"}
(so ``torch.load(weights_only=True)`` loads it) and ``labels.csv`` (label values, names, colours, DICOM/SNOMED
codes). The networks are MONAI's SegResNetDS (init_filters 8, three levels) trained with a plain torch loop on
random 32³ crops of phantoms (build_tiny_models.phantomCase; seeds the tests never use), intensities normalized as
the config says. Runs with a Python that has monai and torch (the isolated "monaiauto3dseg" environment).
"""

import csv
import hashlib
import io
import json
import logging
import os
import sys
import time
import zipfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_tiny_models  # noqa: E402 - numpy-only phantoms, shared with the nnU-Net models

BUILDER_VERSION = 1
ROI = [32, 32, 32]
LABEL_COLUMNS = ["LabelValue", "Name", "RecommendedDisplayRGBValue"] + [
    f"{sequence}.{part}" for sequence in ("SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence",
                                          "SegmentedPropertyTypeModifierCodeSequence", "AnatomicRegionSequence",
                                          "AnatomicRegionModifierSequence")
    for part in ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")]
ANATOMY = ["SCT", "123037004", "Anatomical Structure"]
ALTERED = ["SCT", "49755003", "Morphologically Altered Structure"]
NONE = ["", "", ""]
# name, colour, category, type, type modifier, region, region modifier
PHANTOM_LABELS = [("bright sphere", "230 220 70", ANATOMY, ["SCT", "272673000", "Bone"], NONE, NONE, NONE),
                  ("dark sphere", "70 130 200", ANATOMY, ["SCT", "39607008", "Lung"], ["SCT", "7771000", "Left"],
                   NONE, NONE)]
LESION_LABELS = [("lesion", "200 60 60", ALTERED, ["SCT", "52988006", "Lesion"], NONE, ["SCT", "12738006", "Brain"],
                  NONE)]
MODELS = {
    "phantom": {"twoChannel": False, "labels": PHANTOM_LABELS, "firstSeed": 300,
                "config": {"normalize_mode": "range", "intensity_bounds": [-1000.0, 1000.0]}},
    "two-input": {"twoChannel": True, "labels": LESION_LABELS, "firstSeed": 400,
                  "config": {"normalize_mode": "meanstd", "intensity_bounds": [0.0, 1.0],
                             "extra_modalities": {"image2": "meanstd"}}},
}
DIRECTORY_VARIABLE = build_tiny_models.DIRECTORY_VARIABLE


def defaultOutputDir():
    root = os.environ.get(DIRECTORY_VARIABLE) or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "output", "tiny_models")
    return os.path.join(root, "monai")


def normalize(channels, config):
    """The config's intensity normalization (as the backend applies it with MONAI's transforms), per channel."""
    modes = [config["normalize_mode"]] + list(config.get("extra_modalities", {}).values())
    low, high = config["intensity_bounds"]
    result = []
    for image, mode in zip(channels, modes):
        if mode == "range":
            result.append(1.0 / (1.0 + np.exp(-((image - low) / (high - low) * 2.0 - 1.0))))
        else:
            nonzero = image[image != 0]
            result.append(np.where(image != 0, (image - nonzero.mean()) / nonzero.std(), 0.0))
    return np.stack(result).astype(np.float32)


def _config(spec, inChannels, outChannels):
    return {"network": {"_target_": "SegResNetDS", "spatial_dims": 3, "init_filters": 8, "in_channels": inChannels,
                        "out_channels": outChannels, "blocks_down": [1, 1, 1], "dsdepth": 1, "norm": "INSTANCE"},
            "roi_size": list(ROI), "resample_resolution": [1.0, 1.0, 1.0], "orientation_ras": True,
            "crop_foreground": True, "sigmoid": False, **spec["config"]}


def _cases(spec, count, firstSeed):
    cases = []
    for seed in range(firstSeed, firstSeed + count):
        channels, label = build_tiny_models.phantomCase(seed, twoChannel=spec["twoChannel"])
        cases.append((normalize(channels, spec["config"]), label.astype(np.int64)))
    return cases


def _randomCrop(rng, image, label):
    corner = [rng.integers(0, size - roi + 1) for size, roi in zip(label.shape, ROI)]
    window = tuple(slice(c, c + roi) for c, roi in zip(corner, ROI))
    image, label = image[(slice(None),) + window], label[window]
    for axis in range(3):
        if rng.random() < 0.5:
            image, label = np.flip(image, axis + 1), np.flip(label, axis)
    order = rng.permutation(3)
    return np.transpose(image, [0, *(order + 1)]).copy(), np.transpose(label, order).copy()


def train(spec, iterations, seed=0):
    import torch
    from monai.losses import DiceCELoss
    from monai.networks.nets import SegResNetDS

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cases = _cases(spec, 8, spec["firstSeed"])
    config = _config(spec, cases[0][0].shape[0], len(spec["labels"]) + 1)
    arguments = {key: value for key, value in config["network"].items() if key != "_target_"}
    network = SegResNetDS(**arguments)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-2, weight_decay=1e-5)
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    network.train()
    for iteration in range(iterations):
        batch = [_randomCrop(rng, *cases[rng.integers(len(cases))]) for _ in range(2)]
        images = torch.from_numpy(np.stack([image for image, _ in batch]))
        labels = torch.from_numpy(np.stack([label for _, label in batch]))[:, None]
        optimizer.zero_grad()
        output = network(images)
        value = loss(output[0] if isinstance(output, (list, tuple)) else output, labels)
        value.backward()
        optimizer.step()
        if iteration % 50 == 0:
            logging.info("iteration %d loss %.3f", iteration, value.item())
    network.eval()
    return network, config


def heldOutDice(network, spec):
    """Mean Dice per label on two phantoms of other seeds (whole 40³ volumes, no sliding window)."""
    import torch

    scores = []
    for image, label in _cases(spec, 2, spec["firstSeed"] + 50):
        with torch.no_grad():
            output = network(torch.from_numpy(image)[None])
        prediction = torch.argmax(output[0] if isinstance(output, (list, tuple)) else output, 1)[0].numpy()
        for value in range(1, len(spec["labels"]) + 1):
            a, b = prediction == value, label == value
            scores.append(2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1))
    return round(float(np.mean(scores)), 4)


def labelsCsv(labels):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    for value, (name, color, *codes) in enumerate(labels, start=1):
        writer.writerow([value, name, color] + [part for code in codes for part in code])
    return text.getvalue()


def packModel(network, config, labels, path):
    """The Auto3DSeg zip layout: model.pt ({config, state_dict}) and labels.csv."""
    import torch

    buffer = io.BytesIO()
    torch.save({"config": json.loads(json.dumps(config)), "state_dict": network.state_dict(), "epoch": 0,
                "best_metric": 0.0}, buffer)
    with zipfile.ZipFile(path + ".partial", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.pt", buffer.getvalue())
        archive.writestr("labels.csv", labelsCsv(labels))
    os.replace(path + ".partial", path)
    with open(path, "rb") as file:
        sha256 = hashlib.sha256(file.read()).hexdigest()
    return {"file": os.path.basename(path), "sha256": sha256, "size": os.path.getsize(path)}


def buildAll(output, iterations=300):
    """Build both models into output (skipped when a manifest of this builder version is there)."""
    manifestPath = build_tiny_models.builtManifest(output, BUILDER_VERSION, "Tiny MONAI models")
    if manifestPath:
        return manifestPath
    import monai
    import torch

    torch.set_num_threads(1)  # tiny networks on a busy 2-core machine: more threads only wait for each other
    os.makedirs(output, exist_ok=True)
    manifest = {"builderVersion": BUILDER_VERSION, "torch": torch.__version__, "monai": monai.__version__,
                "models": {}}
    for name, spec in MODELS.items():
        start = time.time()
        network, config = train(spec, iterations)
        entry = packModel(network, config, spec["labels"], os.path.join(output, f"{name}-v1.0.0.zip"))
        entry.update(heldOutDice=heldOutDice(network, spec), seconds=round(time.time() - start, 1),
                     inputs=["T1", "T2"] if spec["twoChannel"] else ["CT"],
                     segmentNames=[label[0] for label in spec["labels"]])
        manifest["models"][name] = entry
        logging.info("%s: held-out Dice %.3f in %.0f s", name, entry["heldOutDice"], entry["seconds"])
    return build_tiny_models.writeManifest(output, manifest)


def _trainingArguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="training iterations (default: %(default)s)")


def main(argv=None):
    args = build_tiny_models.builderArguments(argv, __doc__, defaultOutputDir(), _trainingArguments)
    print(buildAll(args.output, args.iterations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
