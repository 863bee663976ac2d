"""The evaluate step's parent side: nnU-Net's cross-validation (and test-split) predictions against the references,
with our comparison engine (every metric, per fold and structure), written as the cohort's tables, plots and report;
nnU-Net's best-configuration and post-processing decision read from its JSON; the model registered in the nnU-Net
backend's list with its provenance, and exported as a zip that the backend's offline import accepts.
"""

import json
import math
import os
import zipfile

import numpy as np

from ..AtomicWrite import atomicOutput, writeText
from ..Backends.NnUNet.NnUNetTrainedModels import registerModel
from ..Reports.CohortReport import writeCohortOutputs
from ..Reports.CohortTable import metricRow
from ..Comparison.LabelmapComparison import compareLabelmapFiles

PROVENANCE_FILE = "aisegmentation-training.json"
FILE_ENDING = ".nii.gz"


def _caseId(fileName):
    return fileName[: -len(FILE_ENDING)] if fileName.endswith(FILE_ENDING) else None


def comparePredictions(runtime, predictionFolder, referenceFolder, names, casePrefix=""):
    """Case records (the cohort's format) of every prediction in predictionFolder against referenceFolder/<case>."""
    records = []
    for fileName in sorted(os.listdir(predictionFolder)):
        case = _caseId(fileName)
        if case is None:
            continue
        reference = os.path.join(referenceFolder, fileName)
        rows = compareLabelmapFiles(runtime, reference, os.path.join(predictionFolder, fileName), names, names,
                                    match="value")
        records.append({"case": f"{casePrefix}{case}", "status": "done",
                        "metrics": [metricRow(row) for row in rows]})
    return records


def perFoldSummary(records, configuration, fold):
    """[{configuration, fold, structure, n, dice, hausdorff95}]: means over the fold's cases (finite HD95 only)."""
    byStructure = {}
    for record in records:
        for entry in record["metrics"]:
            byStructure.setdefault(entry["structure"], []).append(entry)
    rows = []
    for structure, entries in byStructure.items():
        distances = [float(e["hausdorff95"]) for e in entries if e["hausdorff95"] not in (None, "inf")
                     and math.isfinite(float(e["hausdorff95"]))]
        rows.append({"configuration": configuration, "fold": fold, "structure": structure, "n": len(entries),
                     "dice": float(np.mean([float(e["dice"]) for e in entries])),
                     "hausdorff95": float(np.mean(distances)) if distances else math.inf})
    return rows


def requireValidationPredictions(project, dataset, configuration, folds):
    """Every fold's validation predictions folder; ValueError naming the first fold without one."""
    modelFolder = project.modelFolder(dataset["name"], configuration)
    folders = [os.path.join(modelFolder, f"fold_{fold}", "validation") for fold in folds]
    for fold, predictions in zip(folds, folders):
        if not os.path.isdir(predictions):
            raise ValueError(f"Fold {fold} of {configuration} has no validation predictions ('{predictions}'): run "
                             "the fit step for it first")
    return folders


def evaluateCrossValidation(runtime, project, dataset, configuration, folds):
    """Our metrics on every fold's validation predictions; the cohort outputs in evaluation/crossvalidation-<c>/.
    Returns (records, per-fold rows, report path)."""
    names = {value: name for name, value in dataset["labels"].items()}
    references = os.path.join(project.rawFolder(dataset["name"]), "labelsTr")
    records, perFold = [], []
    for fold, predictions in zip(folds, requireValidationPredictions(project, dataset, configuration, folds)):
        foldRecords = comparePredictions(runtime, predictions, references, names, f"fold{fold}-")
        records += foldRecords
        perFold += perFoldSummary(foldRecords, configuration, fold)
    folder = project.evaluationFolder(f"crossvalidation-{configuration}")
    paths = writeCohortOutputs(records, folder)
    return records, perFold, paths["report"]


def bestConfigurationSummary(result):
    """What the training report shows of find_best_configuration's result and its postprocessing.json."""
    best = result["best_model_or_ensemble"]
    postprocessing = None
    folder = os.path.dirname(best["postprocessing_file"])
    path = os.path.join(folder, "postprocessing.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as file:
            decision = json.load(file)
        kept = [f"{fn} {kwargs}" for fn, kwargs in zip(decision.get("postprocessing_fns", []),
                                                       decision.get("postprocessing_kwargs", []))]
        postprocessing = "; ".join(kept) or None
    selected = best.get("selected_model_or_models") or []
    return {"allResults": result["all_results"], "diceBefore": best["result_on_crossval_pre_pp"],
            "diceAfter": best["result_on_crossval_post_pp"], "postprocessing": postprocessing,
            "bestName": " + ".join(f"{m['trainer']}__{m['plans_identifier']}__{m['configuration']}" for m in selected)}


def registerTrainedModel(name, modelFolder, provenance):
    """Write the provenance into the model folder (it travels with an exported zip) and add the model to the
    nnU-Net backend's list."""
    writeText(os.path.join(modelFolder, PROVENANCE_FILE), json.dumps(provenance, indent=1, default=str))
    return registerModel(name, modelFolder, provenance)


def exportModelZip(modelFolder, zipPath):
    """A zip of the model (dataset.json, plans.json, fold_*/checkpoint_final.pth, provenance) laid out as
    <DatasetNNN_Name>/<trainer>__<plans>__<configuration>/..., written atomically; returns its path."""
    modelFolder = os.path.abspath(os.fspath(modelFolder))
    prefix = os.path.join(os.path.basename(os.path.dirname(modelFolder)), os.path.basename(modelFolder))
    files = [name for name in ("dataset.json", "plans.json", PROVENANCE_FILE)
             if os.path.isfile(os.path.join(modelFolder, name))]
    files += [os.path.join(name, "checkpoint_final.pth") for name in sorted(os.listdir(modelFolder))
              if name.startswith("fold_") and os.path.isfile(os.path.join(modelFolder, name, "checkpoint_final.pth"))]
    if not any(name.endswith(".pth") for name in files):
        raise ValueError(f"'{modelFolder}' has no finished fold (fold_*/checkpoint_final.pth) to export")
    with atomicOutput(zipPath) as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in files:
                archive.write(os.path.join(modelFolder, name), os.path.join(prefix, name))
    return os.fspath(zipPath)
