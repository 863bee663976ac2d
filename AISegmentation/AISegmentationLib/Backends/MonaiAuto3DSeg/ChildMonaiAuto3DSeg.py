"""MONAI Auto3DSeg inference inside the child process, with MONAI's own transforms and sliding-window inferer.

The model comes as an installed folder, a zip (extracted here, safely, into the job's folder) or a catalog download
(done here, out of Slicer's process, after the user's consent: size and SHA-256 checked, then extracted next to its
final folder and renamed into place). ``model.pt`` is loaded with ``torch.load(weights_only=True)``: a dict with the
network ``config`` (plain types) and its ``state_dict``; the network is a class of ``monai.networks.nets`` named by
``config["network"]["_target_"]`` (SegResNetDS for Auto3DSeg) built from plain keyword arguments. The inputs are
loaded in the caller's order (one channel each), normalized per the config (``normalize_mode``, the extra
modalities' modes), reoriented, cropped and resampled as the config says, segmented with
``sliding_window_inference`` and mapped back onto the first input's grid with ``Invertd``. labels.csv gives the
segment names, colours and DICOM/SNOMED codes.
"""

import csv
import hashlib
import os
import shutil
import tempfile
import time
import urllib.request

import SafeZip
from ChildProtocol import UserError, packageVersion, writeJson
from ChildTorch import availableDevices, deviceName

MODEL_FILE = "model.pt"
LABELS_FILE = "labels.csv"
CODE_COLUMNS = {"category": "SegmentedPropertyCategoryCodeSequence", "type": "SegmentedPropertyTypeCodeSequence",
                "typeModifier": "SegmentedPropertyTypeModifierCodeSequence", "region": "AnatomicRegionSequence",
                "regionModifier": "AnatomicRegionModifierSequence"}
CODE_PARTS = ("CodingSchemeDesignator", "CodeValue", "CodeMeaning")
COLOR_COLUMN = "RecommendedDisplayRGBValue"  # optional: "red green blue", 0..255
CHUNK = 1 << 20


def probe():
    import monai.inferers  # noqa: F401 - the import is the check
    import torch

    return {"versions": {"monai": packageVersion("monai"), "torch": torch.__version__},
            "devices": availableDevices()}


def _findModelFolder(root):
    for current, _, files in os.walk(root):
        if MODEL_FILE in files and LABELS_FILE in files:
            return current
    raise UserError(f"'{root}' holds no {MODEL_FILE} with {LABELS_FILE}")


def _extract(zipPath, parent):
    try:
        return SafeZip.extractZipIntoNewFolder(zipPath, parent)
    except ValueError as error:
        raise UserError(f"The model zip cannot be used: {error}") from None


def download(spec, channel):
    """Download a catalog model's zip into its install folder (spec: url, sha256 or None, size or None, target)."""
    target = spec["target"]
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    handle, zipPath = tempfile.mkstemp(prefix=".download-", suffix=".zip", dir=parent)
    digest, received = hashlib.sha256(), 0
    try:
        with os.fdopen(handle, "wb") as file, urllib.request.urlopen(spec["url"], timeout=60) as response:
            total = spec.get("size") or int(response.headers.get("Content-Length") or 0)
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                file.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if total:
                    channel.stageFraction(received / total)
    except OSError as error:
        os.remove(zipPath)
        raise UserError(f"Downloading the model from {spec['url']} failed ({error})") from None
    try:
        sha256 = digest.hexdigest()
        if spec.get("size") and received != spec["size"]:
            raise UserError(f"The model downloaded from {spec['url']} has {received} bytes, the catalog says "
                            f"{spec['size']}: download again")
        if spec.get("sha256") and sha256 != spec["sha256"]:
            raise UserError(f"The model downloaded from {spec['url']} fails its checksum (SHA-256 {sha256}, the "
                            f"catalog says {spec['sha256']}): not installed")
        if not spec.get("sha256"):
            channel.warning(f"The catalog publishes no checksum for {spec['url']}; its SHA-256 is {sha256}")
        extracted = _extract(zipPath, parent)
        try:
            _findModelFolder(extracted)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(extracted, target)
        finally:
            shutil.rmtree(extracted, ignore_errors=True)
    finally:
        os.remove(zipPath)
    return sha256


def _code(row, column):
    parts = [(row.get(f"{column}.{part}") or "").strip() for part in CODE_PARTS]
    return parts if parts[1] else None


def readLabels(path):
    """{value: {"name", "color"?, codes...}} from labels.csv (LabelValue, Name, DICOM code columns)."""
    labels = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            for row in csv.DictReader(file):
                value = int(row["LabelValue"])
                entry = {"name": (row.get("Name") or "").strip()}
                for field, column in CODE_COLUMNS.items():
                    code = _code(row, column)
                    if code:
                        entry[field] = code
                if (row.get(COLOR_COLUMN) or "").strip():
                    entry["color"] = [int(part) for part in row[COLOR_COLUMN].split()]
                labels[str(value)] = entry
    except (OSError, KeyError, ValueError, csv.Error) as error:
        raise UserError(f"The model's {LABELS_FILE} is malformed ({type(error).__name__}: {error})") from None
    if not labels:
        raise UserError(f"The model's {LABELS_FILE} lists no labels")
    return labels


def loadNetwork(folder, device):
    import monai.networks.nets
    import torch

    try:
        checkpoint = torch.load(os.path.join(folder, MODEL_FILE), map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: pickle, zip or torch errors alike
        raise UserError(f"The model's {MODEL_FILE} cannot be loaded ({type(error).__name__}: {error})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("config"), dict) or \
            "state_dict" not in checkpoint:
        raise UserError(f"The model's {MODEL_FILE} is not an Auto3DSeg checkpoint (a dict with config and state_dict)")
    config = checkpoint["config"]
    network = dict(config.get("network") or {})
    className = str(network.pop("_target_", "")).rsplit(".", 1)[-1]
    networkClass = getattr(monai.networks.nets, className, None) if className else None
    if not isinstance(networkClass, type) or any(isinstance(v, str) and v[:1] in "@$%" for v in network.values()):
        raise UserError(f"The model's network '{className}' is not a plain MONAI network (monai.networks.nets)")
    model = networkClass(**network)
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as error:
        raise UserError(f"The model's weights do not fit its network ({str(error)[:300]})") from None
    return model.to(device).eval(), config


def _normalization(key, mode, bounds):
    """MONAI intensity transforms of one input, per Auto3DSeg's normalize modes."""
    import torch
    from monai.transforms import Lambdad, NormalizeIntensityd, ScaleIntensityRanged

    if mode == "none":
        return []
    if mode in ("range", "ct"):
        return [ScaleIntensityRanged(keys=key, a_min=bounds[0], a_max=bounds[1], b_min=-1, b_max=1, clip=False),
                Lambdad(keys=key, func=torch.sigmoid)]
    if mode in ("meanstd", "mri"):
        return [NormalizeIntensityd(keys=key, nonzero=True, channel_wise=True)]
    if mode == "meanstdtanh":
        return [NormalizeIntensityd(keys=key, nonzero=True, channel_wise=True),
                Lambdad(keys=key, func=lambda x: 3 * torch.tanh(x / 3))]
    if mode == "pet":
        return [Lambdad(keys=key, func=lambda x: torch.sigmoid((x - x.min()) / x.std()))]
    raise UserError(f"The model's normalize_mode '{mode}' is not supported")


def _transforms(config, keys):
    """(loading and intensity transforms, spatial transforms that Invertd undoes afterwards)."""
    import numpy as np
    import torch
    from monai.transforms import (Compose, ConcatItemsd, CropForegroundd, EnsureTyped, LoadImaged, Orientationd,
                                  Spacingd)

    modes = [config.get("normalize_mode", "none")] + list(dict(config.get("extra_modalities") or {}).values())
    bounds = config.get("intensity_bounds") or [0.0, 1.0]
    loading = [LoadImaged(keys=keys, ensure_channel_first=True, image_only=True),
               EnsureTyped(keys=keys, data_type="tensor", dtype=torch.float)]
    for key, mode in zip(keys, modes):
        loading.extend(_normalization(key, mode, bounds))
    loading.append(ConcatItemsd(keys=keys, name="image", dim=0))
    spatial = []
    if config.get("orientation_ras", False):
        spatial.append(Orientationd(keys="image", axcodes="RAS"))
    if config.get("crop_foreground", True):
        spatial.append(CropForegroundd(keys="image", source_key="image", margin=10, allow_smaller=True))
    if config.get("resample_resolution"):
        pixdim = [float(value) for value in config["resample_resolution"]]
        spatial.append(Spacingd(keys="image", pixdim=pixdim, mode="bilinear", dtype=torch.float,
                                min_pixdim=np.array(pixdim) * 0.75, max_pixdim=np.array(pixdim) * 1.25))
    return Compose(loading), Compose(spatial)


def _windowCount(shape, roiSize, overlap):
    count = 1
    for size, roi in zip(shape, roiSize):
        step = max(int(roi * (1 - overlap)), 1)
        count *= 1 if size <= roi else -(-(size - roi) // step) + 1
    return count


def nestedLabels(probabilities, values):
    """Label map of overlapping sigmoid channels (e.g. BraTS: whole tumour, core, enhancing): where any channel
    from c on is on, the label is values[c]."""
    import torch

    label = torch.zeros(probabilities.shape[1:], dtype=torch.uint8, device=probabilities.device)
    for index, value in enumerate(values):
        label[probabilities[index:].any(0)] = value
    return label


def segment(model, config, inputs, options, device, channel):
    import torch
    from monai.data import MetaTensor
    from monai.inferers import sliding_window_inference
    from monai.transforms import Invertd

    keys = [f"image{index}" for index in range(len(inputs))]
    loading, spatial = _transforms(config, keys)
    data = spatial(loading(dict(zip(keys, inputs))))
    image = data["image"]
    roiSize = [int(size) for size in config.get("roi_size") or [96, 96, 96]]
    total = _windowCount(image.shape[1:], roiSize, options["overlap"])
    done = [0]

    def predictor(window):
        done[0] += window.shape[0]
        channel.stageFraction(done[0] / total)
        output = model(window)
        return output[0] if isinstance(output, (list, tuple)) else output

    channel.stage(20, 90, "Predicting")
    batch = image.as_tensor().unsqueeze(0).to(device)
    with torch.no_grad(), torch.autocast(device_type=device.type, enabled=device.type == "cuda"):
        logits = sliding_window_inference(batch, roiSize, 1, predictor, overlap=options["overlap"], mode="gaussian")
    logits = logits[0].float()
    if config.get("sigmoid", False):
        prediction = nestedLabels(torch.sigmoid(logits) >= 0.5, config.get("nested_labels") or [2, 1, 3])[None]
    else:
        prediction = torch.argmax(logits, dim=0, keepdim=True).to(torch.uint8)
    channel.stage(90, 96, "Mapping back onto the input grid")
    data["pred"] = MetaTensor(prediction.cpu(), meta=image.meta, applied_operations=image.applied_operations)
    inverted = Invertd(keys="pred", orig_keys="image", transform=spatial, nearest_interp=True)(data)["pred"]
    return inverted[0].cpu().numpy()


def _writeLabelmap(array, reference, path):
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(reference)
    expected = image.GetSize()
    if tuple(array.shape) != tuple(expected):
        raise RuntimeError(f"The label map's shape {array.shape} differs from the input's {expected}")
    result = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    result.CopyInformation(image)
    sitk.WriteImage(result, path, True)


def _modelFolder(options, channel):
    if options.get("modelFolder"):
        return _findModelFolder(options["modelFolder"]), None
    if options.get("modelZip"):
        channel.stage(1, 5, "Extracting the model")
        return _findModelFolder(_extract(options["modelZip"], os.getcwd())), None
    channel.stage(1, 10, "Downloading the model")
    sha256 = download(options["download"], channel)
    return _findModelFolder(options["download"]["target"]), sha256


def run(request, channel):
    import torch

    options = request["options"]
    channel.stage(0, 1, "Starting MONAI Auto3DSeg")
    device = torch.device(deviceName(options["device"]))
    folder, sha256 = _modelFolder(options, channel)
    labels = readLabels(os.path.join(folder, LABELS_FILE))
    channel.stage(10, 15, "Loading the model")
    model, config = loadNetwork(folder, device)
    expected = 1 + len(dict(config.get("extra_modalities") or {}))
    if len(request["inputs"]) != expected:
        raise UserError(f"The model expects {expected} input volume(s), got {len(request['inputs'])}")
    channel.stage(15, 20, "Reading and preparing the input")
    start = time.time()
    segmentation = segment(model, config, request["inputs"], options, device, channel)
    channel.stage(96, 100, "Writing result")
    dtype = "uint8" if max(map(int, labels)) < 256 else "uint16"
    _writeLabelmap(segmentation.astype(dtype), request["inputs"][0], request["outputLabelmap"])
    writeJson(request["outputLabels"], {"labels": labels})
    info = {"versions": {"monai": packageVersion("monai"), "torch": packageVersion("torch")}, "device": str(device),
            "network": str(config.get("network", {}).get("_target_")), "seconds": round(time.time() - start, 2)}
    if sha256:
        info["sha256"] = sha256
    return {"info": info}
