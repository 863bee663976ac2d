"""The training project's HTML pages (self-contained, escaped, the cohort report's style): the dataset report
(cases, spacings, sizes, structures per case, what homogenization did) and the training report (the plan, the
epochs of each fold, nnU-Net's best configuration and post-processing decision, the cross-validation Dice per fold
and structure, links to the cohort-style evaluation reports)."""

import html
import os

from ..AtomicWrite import writeText
from ..Reports.CohortReport import STYLE

DATASET_REPORT = "dataset-report.html"
TRAINING_REPORT = "training-report.html"


def _text(value):
    return html.escape("" if value is None else str(value))


def _table(header, rows):
    head = "".join(f"<th>{_text(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{_text(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title, parts):
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{_text(title)}"
                      f"</title>", f"<style>{STYLE}</style></head><body>", f"<h1>{_text(title)}</h1>", *parts,
                      "</body></html>\n"])


def writeDatasetReport(projectFolder, dataset):
    """dataset: the project's recorded dataset step (training.json "dataset")."""
    table = dataset["labels"]
    parts = [f"<p>{_text(dataset['name'])}: {len(dataset['training'])} training case(s), {len(dataset['test'])} "
             f"held out for testing; channels {_text(', '.join(dataset['channels']))}; "
             f"{dataset['numberOfFolds']} folds requested.</p>",
             "<h2>Label table</h2>", _table(("Value", "Structure"), [(v, n) for n, v in table.items()])]
    if dataset.get("mapping"):
        parts.append(f"<p>Label homogenization mapping: {_text(dataset['mapping'])}</p>")
    for message in dataset.get("messages", []):
        parts.append(f'<p class="warning">{_text(message)}</p>')
    rows = []
    for case, facts in dataset["cases"].items():
        rows.append((case, facts["split"], " × ".join(map(str, facts["shape"])),
                     " × ".join(f"{s:g}" for s in facts["spacing"]),
                     ", ".join(f"{name} ({count})" for name, count in facts["voxels"].items() if count),
                     ", ".join(f"{source} → {target}" for source, target in facts.get("renamed", [])),
                     "; ".join(facts.get("notes", []))))
    parts += ["<h2>Cases</h2>", _table(("Case", "Split", "Size (voxels)", "Spacing (mm)", "Structures (voxels)",
                                       "Homogenized names", "Notes"), rows)]
    return writeText(os.path.join(projectFolder, DATASET_REPORT), _page("Training dataset", parts))


def _planRows(plan):
    return [(name, " × ".join(f"{s:g}" for s in c["spacing"]), " × ".join(map(str, c["patchSize"])),
             c["batchSize"], " × ".join(map(str, c.get("medianShape") or [])), c.get("features"))
            for name, c in plan["configurations"].items()]


def writeTrainingReport(projectFolder, state):
    parts = []
    plan = state.get("plan")
    if plan:
        parts += ["<h2>Plan (nnU-Net)</h2>", f"<p>Original median spacing {_text(plan.get('originalSpacing'))} mm; "
                  "the network sees the images resampled to the target spacing below (an unavoidable loss of "
                  "resolution where it is coarser).</p>",
                  _table(("Configuration", "Target spacing (mm)", "Patch", "Batch", "Median size", "Features"),
                         _planRows(plan))]
    fit = state.get("fit") or {}
    if fit:
        parts.append(f"<h2>Training</h2><p>Trainer {_text(fit.get('trainer'))}, schedule "
                     f"{_text(fit.get('scheduleName'))} ({_text(fit.get('schedule'))}).</p>")
        for key, epochs in sorted((fit.get("epochs") or {}).items()):
            parts += [f"<h3>{_text(key)}</h3>", _table(
                ("Epoch", "Train loss", "Validation loss", "Pseudo-Dice", "Seconds"),
                [(e["epoch"], f"{e['trainLoss']:.4f}", f"{e['validationLoss']:.4f}",
                  ", ".join(f"{d:.3f}" for d in e["pseudoDice"]), f"{e['seconds']:.1f}") for e in epochs])]
    evaluation = state.get("evaluate") or {}
    if evaluation:
        parts += ["<h2>Cross-validation (our comparison engine)</h2>",
                  _table(("Configuration", "Fold", "Structure", "Cases", "Mean Dice", "Mean HD95 (mm)"),
                         [(r["configuration"], r["fold"], r["structure"], r["n"], f"{r['dice']:.4f}",
                           f"{r['hausdorff95']:.2f}") for r in evaluation.get("perFold", [])])]
        best = evaluation.get("best")
        if best:
            parts += ["<h2>nnU-Net's best configuration and post-processing</h2>",
                      _table(("Model or ensemble", "CV Dice (nnU-Net)"), sorted(best["allResults"].items())),
                      f"<p>Best: {_text(best['bestName'])}; Dice before post-processing "
                      f"{best['diceBefore']:.4f}, after {best['diceAfter']:.4f}; post-processing kept: "
                      f"{_text(best['postprocessing'] or 'none')}.</p>"]
        links = [(label, path) for label, path in (evaluation.get("reports") or {}).items()]
        if links:
            parts.append("<p>" + " · ".join(f'<a href="{_text(path)}">{_text(label)}</a>' for label, path in links)
                         + "</p>")
    return writeText(os.path.join(projectFolder, TRAINING_REPORT), _page("Training", parts or ["<p>Nothing yet</p>"]))
