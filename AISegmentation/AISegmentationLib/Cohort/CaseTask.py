"""One case of a cohort, as a Dask worker runs it (or any process: the same function runs in the caller's).

``runCase(case, outputDir, steps, ...)`` loads the case's image(s) (files or a DICOM series folder), runs the steps
and writes, in ``<outputDir>/cases/<case>/``, each file through AtomicWrite (temporary name, then rename):

- ``<case>.seg.nrrd``; ``<case>_labels.nii.gz`` with its name table ``<case>_labels.nii.gz.labels.json``;
- ``<case>_seg.dcm``, a DICOM SEG referencing the source series, for a DICOM input (when the series cannot be
  referenced, e.g. an anonymized one without UIDs, the case's warnings say why and the other outputs are kept);
- ``<case>_overview.png`` (three orthogonal slices with the segments);
- ``<case>_distance_map.png``, with the compare step: the surface-distance map of the structure with the case's
  lowest Dice (CaseDistanceMap), shown in the report;
- LAST ``case.json``, the record below: its presence marks the case as finished (done or failed); a rerun reuses a
  "done" record only when every output it names is there with its recorded size and SHA-256 (CohortRunner).

The case folder is the tool's own: a symbolic link planted in its place (or in place of ``cases/``) is refused, and
what an interrupted write left is removed only there, only under AtomicWrite's temporary names.

Steps: "segment" runs a registered backend by name with its options (the command's, overridden by the case's) in
the real Logic of this process (one AISegmentationLogic per worker process, its scene cleared between cases) - or,
for a case with a ``prediction``, takes that segmentation instead; "compare" compares the case's label map with its
reference by label value, or by name when the reference has a name table (``<reference>.labels.json``) or is a
``.seg.nrrd``, with every metric of the comparison engine; "volumes" measures each segment. Without the segment
step, compare and volumes use the case's prediction.

Any exception in a case becomes a record with status "failed" and the error message (the traceback goes to the
log), returned normally: a deterministic failure is not retried; only a dead worker is (by Dask). A cancelled case
writes no record (a rerun does it again) and returns ``{"case": id, "status": "cancelled"}``.

Record (``case.json``, and what runCase returns)::

    {"case": id, "status": "done" | "failed", "error": str | None, "seconds": float, "steps": [...],
     "configuration": sha256 of what determines the outputs (inputs, steps, backend, options),
     "inputs": {"images": [...], "reference": path | None, "prediction": path | None, "dicom": bool},
     "outputs": {"segmentation", "labelmap", "labels", "dicomSeg", "overview", "distanceMap", "record"}: paths
                relative to the cohort output folder (None when not written),
     "files": {relative path: {"size": int, "sha256": str}} (every output but case.json),
     "metrics": [{"referenceSegment", "comparedSegment", "dice", "jaccard", "referenceVolume", "comparedVolume",
                  "volumeDifference", "hausdorff", "hausdorff95", "averageSurfaceDistance", "surfaceDice",
                  "note"}]  (volumes in mL, distances in mm; an infinite distance is the string "inf"),
     "volumes": [{"segment", "labelValue", "voxels", "volumeMl"}],
     "backend": {"name", "model", "version", "parameters", "device", "environment", "durationSeconds"}
                or {"prediction": path} or {},
     "warnings": [str], "worker": host:pid}
"""

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import threading
import time
import traceback

from ..AtomicWrite import isTemporaryName, writeText
from ..Reports.CohortTable import metricRow
from ..SampleData import fileSha256

STEPS = ("segment", "compare", "volumes")
# every done case writes them (any steps); the overview picture too, unless it could not be drawn (then a warning
# says why, and the case is still done: a rerun must not redo it for a picture)
REQUIRED_OUTPUTS = ("segmentation", "labelmap", "labels")
CASES_FOLDER = "cases"
RECORD_NAME = "case.json"
DONE, FAILED, CANCELLED = "done", "failed", "cancelled"
CANCEL_POLL_SECONDS = 0.5
PROVENANCE_KEYS = ("backend", "model", "version", "parameters", "device", "environment", "durationSeconds")

_workerLogic = None


class CaseCancelled(Exception):
    """The cohort was cancelled while this case ran."""


def requireSteps(steps):
    """The steps as a tuple in their run order; ValueError for an unknown or empty list."""
    if isinstance(steps, str):
        steps = [part.strip() for part in steps.split(",") if part.strip()]
    steps = list(steps or [])
    unknown = [step for step in steps if step not in STEPS]
    if unknown or not steps:
        raise ValueError(f"Unknown or no cohort step(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose among {', '.join(STEPS)}")
    return tuple(step for step in STEPS if step in steps)


def caseFolder(outputDir, caseId):
    return os.path.join(outputDir, CASES_FOLDER, caseId)


def requireOwnCaseFolder(outputDir, caseId):
    """The case's folder, <outputDir>/cases/<case>; ValueError when it (or cases/) is a symbolic link, a junction or
    not a folder: the case's outputs would be written elsewhere than under the output folder."""
    outputDir = os.path.abspath(outputDir)
    folder = caseFolder(outputDir, caseId)
    for path in (os.path.join(outputDir, CASES_FOLDER), folder):
        if not os.path.lexists(path):
            continue
        if os.path.islink(path) or not os.path.isdir(path) or os.path.realpath(path) != os.path.join(
                os.path.realpath(outputDir), os.path.relpath(path, outputDir)):
            raise ValueError(f"'{path}' is a link or not a folder: the outputs of case '{caseId}' would be written "
                             f"outside '{outputDir}'. Remove it; the cohort creates its case folders itself")
    return folder


def recordPath(outputDir, caseId):
    return os.path.join(caseFolder(outputDir, caseId), RECORD_NAME)


def configurationKey(case, steps, backend, options):
    """sha256 of what determines a case's outputs: a finished case is reused only when it is unchanged."""
    inputs = {"images": case["images"], "reference": case.get("reference"), "prediction": case.get("prediction")}
    if case.get("compare"):  # only then: the keys of cases compared with the defaults stay as they were
        inputs["compare"] = case["compare"]
    text = json.dumps({"inputs": inputs, "steps": list(steps), "backend": backend, "options": options},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def caseOptions(backendOptions, case, declarations=None, backendTitle="the backend"):
    """The backend options of one case: the command's, overridden by the case's own. With the backend's option
    declarations, a case's own option that the backend does not declare perCase is a ValueError naming the
    manifest row (see Options.requireCaseOptions)."""
    if declarations is not None:
        from ..Backends.Options import requireCaseOptions

        requireCaseOptions(declarations, case.get("options"), case.get("where") or f"case '{case['case']}'",
                           backendTitle)
    return {**(backendOptions or {}), **(case.get("options") or {})}


def workerLogic():
    """This process's AISegmentationLogic (one per Dask worker process), created on first use."""
    global _workerLogic
    if _workerLogic is None:
        from ..Logic import AISegmentationLogic
        from ..Runtime import getRuntime

        _workerLogic = AISegmentationLogic(getRuntime())
    return _workerLogic


def removeTemporaryLeftovers(*folders):
    """Remove what an interrupted atomic write left directly in these folders (the ones the cohort writes: its
    output folder and its case folders; nothing below them): only AtomicWrite's temporary names."""
    removed = []
    for folder in folders:
        if os.path.islink(folder) or not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if not isTemporaryName(name):
                continue
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            removed.append(path)
    return removed


def cohortFolders(outputDir, cases):
    """The folders a cohort writes: its output folder and the case folders of these cases."""
    return [outputDir] + [caseFolder(outputDir, case["case"]) for case in cases]


class _CancelWatcher:
    """A threading.Event set when the cohort is cancelled: a distributed.Event (by name) polled in a thread, and/or
    a threading.Event of the caller (in-process runs)."""

    def __init__(self, distributedEventName=None, localEvent=None):
        self.event = threading.Event()
        self._name, self._local = distributedEventName, localEvent
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self._name:
            from distributed import Event

            remote = Event(self._name)
            if remote.is_set():
                self.event.set()
            self._thread = threading.Thread(target=self._watch, args=(remote,), daemon=True,
                                            name=f"cancel-watch-{self._name}")
            self._thread.start()
        elif self._local is not None:
            self._thread = threading.Thread(target=self._watchLocal, daemon=True)
            self._thread.start()
        return self

    def _watch(self, remote):
        while not self._stop.is_set() and not self.event.is_set():
            try:
                if remote.wait(CANCEL_POLL_SECONDS):
                    self.event.set()
            except Exception:  # noqa: BLE001 - the scheduler went away: nothing to watch any more
                logging.debug("Cancel watch ended", exc_info=True)
                return

    def _watchLocal(self):
        while not self._stop.is_set() and not self.event.is_set():
            if self._local.wait(CANCEL_POLL_SECONDS):
                self.event.set()

    def check(self):
        if self.event.is_set():
            raise CaseCancelled()

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return False


def runCase(case, outputDir, steps=STEPS, backend=None, backendOptions=None, environment="auto",
            cancelEventName=None, cancelEvent=None, logic=None):
    """Run one case (see the module docstring); returns its record. case: a dict of Manifest.case();
    cancelEventName: a distributed.Event polled while the case runs; cancelEvent: a threading.Event (in-process)."""
    started = time.time()
    outputDir = os.path.abspath(outputDir)
    caseId = case["case"]
    folder = requireOwnCaseFolder(outputDir, caseId)
    steps = requireSteps(steps)
    options = caseOptions(backendOptions, case)
    record = {"case": caseId, "status": FAILED, "error": None, "seconds": 0.0, "steps": list(steps),
              "configuration": configurationKey(case, steps, backend, options),
              "inputs": {"images": case["images"], "reference": case.get("reference"),
                         "prediction": case.get("prediction"), "dicom": bool(case.get("dicom"))},
              "outputs": {"segmentation": None, "labelmap": None, "labels": None, "dicomSeg": None,
                          "overview": None, "distanceMap": None,
                          "record": os.path.relpath(recordPath(outputDir, caseId), outputDir)},
              "files": {}, "metrics": [], "volumes": [], "backend": {}, "warnings": [],
              "worker": f"{socket.gethostname()}:{os.getpid()}"}
    os.makedirs(folder, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(recordPath(outputDir, caseId))  # no stale marker while the case is redone
    removeTemporaryLeftovers(folder)
    try:
        with _CancelWatcher(cancelEventName, cancelEvent) as watcher:
            watcher.check()
            logic = logic or workerLogic()
            logic.scene.Clear(0)
            if "segment" in steps and backend and not case.get("prediction"):
                caseOptions(backendOptions, case, logic.backendOptions(backend), backend)  # the worker checks too
            _runSteps(logic, case, folder, outputDir, steps, backend, options, environment, watcher, record)
            watcher.check()
        record["status"] = DONE
    except CaseCancelled:
        return _cancelled(caseId, started)
    except Exception as error:  # noqa: BLE001 - a failed case is a record; the cohort goes on
        from ..JobRunner import JobCancelledError

        if isinstance(error, JobCancelledError):
            return _cancelled(caseId, started)
        record["error"] = str(error) or type(error).__name__
        logging.warning("Case %s failed: %s", caseId, record["error"])
        logging.info("Traceback of case %s:\n%s", caseId, traceback.format_exc())
    finally:
        if logic is not None:
            with contextlib.suppress(Exception):
                logic.scene.Clear(0)
    record["files"] = {os.path.relpath(path, outputDir): {"size": os.path.getsize(path), "sha256": fileSha256(path)}
                       for path in _outputPaths(outputDir, record)}
    record["seconds"] = round(time.time() - started, 3)
    writeText(recordPath(outputDir, caseId), json.dumps(record, indent=1, allow_nan=False))
    return record


def _cancelled(caseId, started):
    logging.info("Case %s cancelled", caseId)
    return {"case": caseId, "status": CANCELLED, "error": "cancelled", "seconds": round(time.time() - started, 3)}


def _outputPaths(outputDir, record):
    paths = [os.path.join(outputDir, path) for key, path in record["outputs"].items() if path and key != "record"]
    return [path for path in paths if os.path.isfile(path)]


def _relative(outputDir, path):
    return os.path.relpath(path, outputDir)


def _runSteps(logic, case, folder, outputDir, steps, backend, options, environment, watcher, record):
    caseId = case["case"]
    for path in case["images"]:
        if not os.path.exists(path):
            raise ValueError(f"Image '{path}' of case '{caseId}' does not exist")
    volumes = [logic.loadVolume(path, name=f"{caseId}_{index}") for index, path in enumerate(case["images"])]
    watcher.check()
    if "segment" in steps and not case.get("prediction"):
        if not backend:
            raise ValueError(f"Case '{caseId}' has no prediction and no backend was chosen for the segment step")
        segmentation = logic.runBackend(backend, volumes, environment=environment, cancelEvent=watcher.event,
                                        progressCallback=_quietProgress, **options)
        segmentation.SetName(caseId)
        record["backend"] = _provenance(segmentation)
    elif case.get("prediction"):
        segmentation = _loadPrediction(logic, case["prediction"], volumes[0], caseId)
        record["backend"] = {"prediction": case["prediction"]}
    else:
        raise ValueError(f"Case '{caseId}' has no segmentation to {' and '.join(steps)}: add the segment step (with a "
                         "backend) or a prediction column")
    watcher.check()
    outputs = record["outputs"]
    segmentationPath = logic.saveSegmentation(segmentation, os.path.join(folder, f"{caseId}.seg.nrrd"))
    outputs["segmentation"] = _relative(outputDir, segmentationPath)
    labelmapPath, labelNames = logic.exportLabelmap(segmentation, volumes[0],
                                                    os.path.join(folder, f"{caseId}_labels.nii.gz"))
    from ..SegmentationIO import labelNamesPath

    outputs["labelmap"] = _relative(outputDir, labelmapPath)
    outputs["labels"] = _relative(outputDir, labelNamesPath(labelmapPath))
    if case.get("dicom"):
        try:
            outputs["dicomSeg"] = _relative(outputDir, _writeDicomSeg(labelmapPath, labelNames, case["images"][0],
                                                                      os.path.join(folder, f"{caseId}_seg.dcm"),
                                                                      record["backend"]))
        except ValueError as error:  # e.g. a source series without UIDs: the other outputs are still worth keeping
            record["warnings"].append(f"no DICOM SEG: {error}")
    watcher.check()
    from ..Pictures.Overview import segmentationOverview

    try:
        outputs["overview"] = _relative(outputDir, segmentationOverview(
            logic, volumes[0], segmentation, os.path.join(folder, f"{caseId}_overview.png")))
    except Exception as error:  # noqa: BLE001 - a picture that cannot be drawn costs the case nothing else
        logging.info("Overview of case %s not drawn", caseId, exc_info=True)
        record["warnings"].append(f"no overview picture: {_stepError('overview', error)}")
    if "compare" in steps:
        watcher.check()
        with _step("compare"):
            record["metrics"] = _compare(logic, case, segmentation, labelmapPath, record)
        _drawDistanceMap(logic, case, volumes[0], segmentation, outputDir, folder, record)
    if "volumes" in steps:
        with _step("volumes"):
            record["volumes"] = logic.segmentStatistics(segmentation, volumes[0])


def _drawDistanceMap(logic, case, volumeNode, segmentation, outputDir, folder, record):
    """The worst structure's surface-distance map for the report (CaseDistanceMap); a picture that cannot be drawn
    is a warning, as the overview."""
    from .CaseDistanceMap import drawWorstDistanceMap

    if not record["metrics"]:
        return
    reference = case["reference"]
    try:
        if _isSegmentationFile(reference):
            referenceNode = logic.loadSegmentation(reference, name=f"{case['case']} reference",
                                                   sourceSeries=case["images"][0] if case.get("dicom") else None)
        else:
            referenceNode = logic.importLabelmap(reference, _nameTable(reference), volumeNode,
                                                 name=f"{case['case']} reference")
        path, row = drawWorstDistanceMap(logic, volumeNode, referenceNode, segmentation, record["metrics"],
                                         os.path.join(folder, f"{case['case']}_distance_map.png"))
        logic.scene.RemoveNode(referenceNode)
        if path:
            record["outputs"]["distanceMap"] = _relative(outputDir, path)
            record["distanceMapStructure"] = row.get("structure") or row["referenceSegment"]
    except Exception as error:  # noqa: BLE001 - a picture that cannot be drawn costs the case nothing else
        logging.info("Distance map of case %s not drawn", case["case"], exc_info=True)
        record["warnings"].append(f"no distance map picture: {_stepError('distance map', error)}")


def _stepError(step, error):
    """Words for a step's error: a ValueError is a message for the user already; anything else was unexpected."""
    if isinstance(error, ValueError):
        return str(error)
    return (f"the {step} step failed unexpectedly ({type(error).__name__}: {error}); this is a bug, the traceback "
            "is in the log")


@contextlib.contextmanager
def _step(name):
    """An error of a step names the step (a cancellation passes unchanged)."""
    from ..JobRunner import JobCancelledError

    try:
        yield
    except (CaseCancelled, JobCancelledError):
        raise
    except Exception as error:  # noqa: BLE001 - becomes the case's error message
        text = _stepError(name, error)
        raise ValueError(text if text.startswith(f"the {name} step") else f"{name} step: {text}") from error


def _quietProgress(percent, message):
    logging.debug("%3.0f %% %s", percent, message)


def _provenance(segmentationNode):
    from ..Backends.Jobs.AIResultWriter import ATTRIBUTE_PREFIX

    provenance = {}
    for key in PROVENANCE_KEYS:
        value = segmentationNode.GetAttribute(ATTRIBUTE_PREFIX + key)
        if value is None:
            continue
        with contextlib.suppress(ValueError):
            value = json.loads(value) if key in ("version", "parameters") else value
        provenance["name" if key == "backend" else key] = value
    return provenance


def _isSegmentationFile(path):
    """A .seg.nrrd, a DICOM SEG or an RTSTRUCT (the last two are read on the case's DICOM series)."""
    from ..Dicom.DicomLogic import dicomSegmentationKind

    return os.fspath(path).lower().endswith(".seg.nrrd") or dicomSegmentationKind(path) is not None


def _nameTable(labelmapPath):
    from ..SegmentationIO import labelNamesPath

    path = labelNamesPath(labelmapPath)
    return path if os.path.isfile(path) else None


def _loadPrediction(logic, path, volumeNode, caseId):
    if not os.path.exists(path):
        raise ValueError(f"Prediction '{path}' of case '{caseId}' does not exist")
    if _isSegmentationFile(path):
        segmentation = logic.loadSegmentation(path, name=caseId, sourceSeries=volumeNode)  # DICOM: its series
    else:
        segmentation = logic.importLabelmap(path, _nameTable(path), volumeNode, name=caseId)
    return segmentation


def _writeDicomSeg(labelmapPath, labelNames, dicomFolder, outputPath, provenance):
    """The DICOM SEG of the case, its algorithm identification taken from the segment step's provenance."""
    try:
        from ..Dicom.DicomSeg import writeDicomSeg
    except ImportError as error:
        raise ValueError(f"DICOM SEG output is not available here: {error}") from None
    algorithm = provenance if provenance.get("name") else None  # a prediction file names no algorithm
    return writeDicomSeg(labelmapPath, labelNames, dicomFolder, outputPath, algorithm=algorithm)


def withCompareOptions(cases, steps, match="auto", mapping=None):
    """The cases, each with how its compare step pairs structures ("compare": {"match", "mapping" as a plain dict})
    when it is not the default; ValueError for an unknown match mode or a bad mapping, before anything runs."""
    from ..Comparison.LabelMatching import readLabelMapping, resolveMatch

    mapping = readLabelMapping(mapping)
    resolveMatch(match, mapping=mapping)
    if "compare" not in steps or (match in (None, "auto") and not mapping):
        return cases
    options = {"match": match or "auto", "mapping": mapping.asDict() if mapping else None}
    return [{**case, "compare": options} for case in cases]


def _compare(logic, case, segmentation, labelmapPath, record):
    reference = case.get("reference")
    if not reference:
        record["warnings"].append("no reference: the compare step had nothing to compare with")
        return []
    if not os.path.exists(reference):
        raise ValueError(f"Reference '{reference}' of case '{case['case']}' does not exist")
    compare = case.get("compare") or {}
    match, mapping = compare.get("match", "auto"), compare.get("mapping")
    prediction = case.get("prediction")  # a label map without a name table carries no names ("auto": by value)
    named = not prediction or _isSegmentationFile(prediction) or bool(_nameTable(prediction))
    if _isSegmentationFile(reference):
        from ..Comparison.SegmentComparisonMRML import matchSegments

        referenceNode = logic.loadSegmentation(reference, name=f"{case['case']} reference",
                                               sourceSeries=case["images"][0] if case.get("dicom") else None)
        pairs = matchSegments(referenceNode, segmentation, match, mapping, comparedNamed=named)
        rows, _table = logic.compareSegmentations(referenceNode, segmentation, pairs)
    else:
        rows = logic.compareLabelmapFiles(reference, labelmapPath, _nameTable(reference),
                                          _nameTable(labelmapPath) if named else None, match=match, mapping=mapping)
    return [metricRow(row) for row in rows]
