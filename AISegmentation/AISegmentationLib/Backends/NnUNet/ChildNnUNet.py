"""nnU-Net v2 inference inside the child process, with nnunetv2's own predictor (``nnUNetPredictor``).

Several model folders are ensembled by averaging their class probabilities (as ``nnUNetv2_ensemble`` does); the
folds of one model folder are combined by nnU-Net itself. The caller has validated the model folders and passes
their label names. Input images are read with the reader/writer class that
the model's plans name, in dataset.json channel order, and the label map is written with the same class, so it has
exactly the input's geometry. Checkpoints are loaded as weights only (ChildCheckpoints): a crafted pickle in a model
folder is refused instead of run.
"""

import copy
import os

from ChildCheckpoints import weightsOnlyCheckpoints
from ChildPostprocessing import applyPostprocessing, loadPostprocessing
from ChildProtocol import UserError, packageVersion, watchOutput, writeJson
from ChildTorch import availableDevices, deviceName


def probe():
    import nnunetv2.inference.predict_from_raw_data  # noqa: F401 - the import is the check
    import torch

    return {"versions": {"nnunetv2": packageVersion("nnunetv2"), "torch": torch.__version__},
            "devices": availableDevices()}


def selectDevice(name):
    import torch

    return torch.device(deviceName(name))


def _predictor(options, device, folder, folds):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    predictor = nnUNetPredictor(tile_step_size=options["stepSize"], use_gaussian=True, use_mirroring=options["tta"],
                                perform_everything_on_device=True, device=device, verbose=False,
                                verbose_preprocessing=False, allow_tqdm=True)
    predictor.initialize_from_trained_model_folder(folder, folds, options["checkpoint"])
    return predictor


def _loadPredictors(options, channel, device):
    predictors = []
    folders = options["modelFolders"]
    for index, folder in enumerate(folders):
        channel.stage(2 + 8 * index / len(folders), 2 + 8 * (index + 1) / len(folders), f"Loading model {folder}")
        predictors.append(_predictor(options, device, folder, options["folds"][index]))
    return predictors


def _previousStage(options, data, properties, channel, device):
    """The low-resolution stage's label map of a cascade model (None without a previous stage)."""
    stage = options.get("previousStage")
    if not stage:
        return None
    channel.stage(10, 40, f"Low-resolution stage ({stage['folder']})")
    with weightsOnlyCheckpoints():
        predictor = _predictor(options, device, stage["folder"], stage["folds"])
    segmentation = predictor.predict_single_npy_array(data.copy(), copy.deepcopy(properties), None, None, False)
    return segmentation[None].astype("int16")  # the cascade input: one channel, signed (nnU-Net marks -1)


def _predict(predictors, data, properties, channel, previous=None, probabilities=False):
    """The label map (and, with probabilities, the class probabilities on the input grid)."""
    if len(predictors) == 1:
        channel.stage(40 if previous is not None else 15, 92, "Predicting")
        result = predictors[0].predict_single_npy_array(data, properties, previous, None, probabilities)
        return result if probabilities else (result, None)
    total = None
    for index, predictor in enumerate(predictors):
        span = 77 / len(predictors)
        channel.stage(15 + span * index, 15 + span * (index + 1), f"Predicting (model {index + 1}/{len(predictors)})")
        _, modelProbabilities = predictor.predict_single_npy_array(data.copy(), copy.deepcopy(properties), None,
                                                                   None, True)
        total = modelProbabilities if total is None else total + modelProbabilities
    total /= len(predictors)
    return predictors[0].label_manager.convert_probabilities_to_segmentation(total), total if probabilities else None


def run(request, channel):
    import numpy as np

    watchOutput(channel)
    options = request["options"]
    channel.stage(0, 2, "Starting nnU-Net")
    postprocessing = loadPostprocessing(options["postprocessingFile"]) if options.get("postprocessingFile") else None
    device = selectDevice(options["device"])
    with weightsOnlyCheckpoints():
        predictors = _loadPredictors(options, channel, device)
    channelNames = predictors[0].dataset_json["channel_names"]
    if len(request["inputs"]) != len(channelNames):
        raise UserError(f"The model expects {len(channelNames)} input volume(s) ({', '.join(channelNames.values())})"
                        f", got {len(request['inputs'])}")
    channel.stage(10, 15, "Reading input")
    reader = predictors[0].plans_manager.image_reader_writer_class()
    data, properties = reader.read_images(request["inputs"])
    previous = _previousStage(options, data, properties, channel, device)
    segmentation, classProbabilities = _predict(predictors, data, properties, channel, previous,
                                                bool(options.get("probabilities")))
    segmentation = np.asarray(segmentation)
    steps = []
    if postprocessing is not None:
        channel.stage(92, 95, "The model's own post-processing")
        segmentation, steps = applyPostprocessing(segmentation, postprocessing)
        channel.log(f"Post-processing of {options['postprocessingFile']}: {', '.join(steps) or 'nothing to do'}")
    channel.stage(95, 100, "Writing result")
    names = request["labelNames"]  # {value: name} from dataset.json, read and validated by the caller
    dtype = np.uint8 if max(map(int, names), default=0) < 256 else np.uint16
    reader.write_seg(segmentation.astype(dtype), request["outputLabelmap"], properties)
    writeJson(request["outputLabels"], {"labels": {str(value): {"name": name} for value, name in names.items()}})
    if classProbabilities is not None:
        writeProbabilities(np.asarray(classProbabilities), segmentation, request["outputLabelmap"])
    return {"info": {"previousStage": (options.get("previousStage") or {}).get("folder"),
                     "versions": {"nnunetv2": packageVersion("nnunetv2"), "torch": packageVersion("torch")},
                     "device": str(device), "trainer": predictors[0].trainer_name, "folds": options["folds"],
                     "postprocessing": steps}}


def probabilityPath(labelmapPath, value):
    return os.path.join(os.path.dirname(labelmapPath), f"probabilities_{value}.nii.gz")


def writeProbabilities(probabilities, segmentation, labelmapPath):
    """One float32 NIfTI per class (0: background) on the grid of the label map written just before (the
    probabilities come in the label map's array order, as nnU-Net's reader gave it)."""
    import numpy as np
    import SimpleITK as sitk

    reference = sitk.ReadImage(labelmapPath)
    written = sitk.GetArrayViewFromImage(reference)
    order = None
    for candidate in ((0, 1, 2), (2, 1, 0)):
        if written.shape == segmentation.transpose(candidate).shape and np.array_equal(
                written, segmentation.transpose(candidate)):
            order = candidate
            break
    if order is None:
        raise UserError("The model's image reader stores arrays in an order the probability export does not know")
    for value in range(probabilities.shape[0]):
        image = sitk.GetImageFromArray(np.ascontiguousarray(probabilities[value].transpose(order), np.float32))
        image.CopyInformation(reference)
        sitk.WriteImage(image, probabilityPath(labelmapPath, value), True)
