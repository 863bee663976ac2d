"""A cohort on Dask: plan the cases, skip the finished ones, run the rest one task per case, gather the records,
write the cohort table and report.

Resume: a case whose ``case.json`` says "done" for the same configuration (inputs, steps, backend, options), names
every output a finished case has (CaseTask.REQUIRED_OUTPUTS, in its own case folder) and whose outputs all still have
the recorded size and SHA-256 is skipped (``force=True`` redoes every case); a failed or
changed case is redone. Each case is submitted with ``client.submit(runCase, ..., key=..., resources=...,
pure=False)``; a case that raises inside runCase is a "failed" record, not a task error, so only a dead worker makes
Dask run a case again - at most ``distributed.scheduler.allowed-failures`` times, then the case is recorded as
failed ("worker died N times"). Cancellation (the cancelEvent, or Ctrl-C in the caller) cancels the cases not yet
started, sets a ``distributed.Event`` that running cases poll (their backend job is cancelled), waits for them to
end and returns what is done; cancelled cases write no record, so a rerun does them.
"""

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import threading
import time

from . import CaseTask
from ..Cluster.ClusterConnection import ALLOWED_FAILURES, resourcesFor
from ..SampleData import fileSha256

POLL_SECONDS = 0.2
CANCEL_WAIT_SECONDS = 120
SKIPPED = "skipped"
UNSTARTED_STATES = ("released", "waiting", "queued", "no-worker")


@dataclasses.dataclass
class CohortResult:
    """What a cohort run did: records (done and failed cases, skipped ones with their earlier record), counts
    {"done", "failed", "skipped", "cancelled", "total"}, the cohort outputs (paths), seconds, and whether it was
    cancelled."""

    records: list
    counts: dict
    outputs: dict
    seconds: float
    cancelled: bool = False
    dashboard: str = None
    started: float = None  # time.time() when the run began

    @property
    def failedCases(self):
        return [record for record in self.records if record.get("status") == CaseTask.FAILED]


@dataclasses.dataclass
class Progress:
    """A progress report: counts of cases done / failed / skipped of total, seconds so far and the estimated
    seconds left (None until a case has run)."""

    done: int
    failed: int
    skipped: int
    total: int
    elapsed: float
    remaining: float = None
    lastCase: str = None

    @property
    def finished(self):
        return self.done + self.failed + self.skipped


def finishedRecord(outputDir, case, configuration):
    """The case's earlier record when it can be reused: "done", this case, same configuration, every output a done
    case has named (in its case folder) and listed in "files", every listed file unchanged (size and SHA-256). None
    otherwise (the case is run)."""
    path = CaseTask.recordPath(outputDir, case["case"])
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != CaseTask.DONE or record.get("case") != case["case"] \
            or record.get("configuration") != configuration:
        return None
    problem = _unprovenOutputs(outputDir, case["case"], record)
    if problem:
        logging.info("Case %s: its earlier record is not reused (%s); the case is redone", case["case"], problem)
        return None
    return record


def _unprovenOutputs(outputDir, caseId, record):
    """Why a done record's outputs do not prove it (a text), or None: each required output named, inside the case
    folder, listed in "files" with its size and SHA-256, and each listed file there with them."""
    outputs, files = record.get("outputs"), record.get("files")
    if not isinstance(outputs, dict) or not isinstance(files, dict):
        return "no outputs or files"
    named = {key: value for key, value in outputs.items() if key != "record" and value}
    missing = [key for key in CaseTask.REQUIRED_OUTPUTS if key not in named]
    if missing:
        return f"it names no {', '.join(missing)}"
    folder = CaseTask.caseFolder(outputDir, caseId)
    for relative in set(named.values()) | set(files):
        full = os.path.normpath(os.path.join(outputDir, str(relative)))
        if os.path.dirname(full) != folder:
            return f"'{relative}' is not in the case's folder"
        expected = files.get(relative)
        try:
            if os.path.getsize(full) != expected["size"] or fileSha256(full) != expected["sha256"]:
                return f"{relative} changed since it was written"
        except (OSError, KeyError, TypeError):
            return f"{relative} is missing or not listed with its size and SHA-256"
    return None


def planCases(cases, outputDir, steps, backend, backendOptions, force=False):
    """(records to reuse, cases to run)."""
    reused, toRun = [], []
    for case in cases:
        configuration = CaseTask.configurationKey(case, steps, backend, CaseTask.caseOptions(backendOptions, case))
        record = None if force else finishedRecord(outputDir, case, configuration)
        (reused.append(record) if record is not None else toRun.append(case))
    return reused, toRun


def _failedRecord(case, steps, error):
    return {"case": case["case"], "status": CaseTask.FAILED, "error": error, "seconds": 0.0, "steps": list(steps),
            "inputs": {"images": case["images"], "reference": case.get("reference"),
                       "prediction": case.get("prediction"), "dicom": bool(case.get("dicom"))},
            "outputs": {}, "files": {}, "metrics": [], "volumes": [], "backend": {}, "warnings": []}


def _allowedFailures(client):
    with contextlib.suppress(Exception):
        return int(client.run_on_scheduler(_schedulerAllowedFailures))
    return ALLOWED_FAILURES


def _schedulerAllowedFailures(dask_scheduler=None):  # noqa: N803 - the name Dask passes the scheduler by
    return dask_scheduler.allowed_failures


def runCohort(client, cases, outputDir, steps=CaseTask.STEPS, backend=None, backendOptions=None, environment="auto",
              force=False, progressCallback=None, cancelEvent=None, writeCohortOutputs=True):
    """Run the cases on a distributed.Client (see the module docstring); returns a CohortResult.
    progressCallback(Progress) is called after each case; cancelEvent: a threading.Event."""
    started = time.time()
    outputDir = os.path.abspath(outputDir)
    steps = CaseTask.requireSteps(steps)
    for case in cases:
        CaseTask.requireOwnCaseFolder(outputDir, case["case"])
    os.makedirs(os.path.join(outputDir, CaseTask.CASES_FOLDER), exist_ok=True)
    reused, toRun = planCases(cases, outputDir, steps, backend, backendOptions, force)
    counts = {"done": 0, "failed": 0, "skipped": len(reused), "cancelled": 0, "total": len(cases)}
    records = {record["case"]: record for record in reused}
    token = secrets.token_hex(4)
    eventName = f"aisegmentation-cohort-cancel-{token}"
    device = (backendOptions or {}).get("device") if "segment" in steps else None
    futures = {}
    for case in toRun:
        futures[client.submit(CaseTask.runCase, case, outputDir, steps, backend, backendOptions, environment,
                              eventName, key=f"case-{case['case']}-{token}",
                              resources=resourcesFor(CaseTask.caseOptions({"device": device}, case).get("device")),
                              pure=False)] = case
    logging.info("Cohort: %d cases, %d finished earlier, %d to run", len(cases), len(reused), len(toRun))
    state = {"durations": [], "last": None}

    def report():
        if progressCallback is not None:
            progressCallback(_progress(counts, started, state, len(toRun)))

    report()
    cancelled = False
    try:
        cancelled = _gather(client, futures, steps, counts, records, state, report, cancelEvent)
    except KeyboardInterrupt:
        logging.warning("Cohort interrupted: cancelling the cases not yet done")
        cancelled = True
    if cancelled:
        _cancelRunning(client, futures, eventName, steps, counts, records, state, report)
        _adoptRecordsWrittenMeanwhile(cases, outputDir, records, counts, started)
    _forgetEvent(client, eventName)
    removed = CaseTask.removeTemporaryLeftovers(*CaseTask.cohortFolders(outputDir, cases))
    if removed:
        logging.info("Removed %d temporary leftovers of interrupted writes", len(removed))
    ordered = [records[case["case"]] for case in cases if case["case"] in records]
    outputs = _writeCohortOutputs(ordered, outputDir) if writeCohortOutputs else {}
    return CohortResult(ordered, counts, outputs, round(time.time() - started, 3), cancelled, started=started)


def _gather(client, futures, steps, counts, records, state, report, cancelEvent):
    """Collect results as cases finish; True when cancelled (cancelEvent) before all finished."""
    from distributed import as_completed

    pending = as_completed(list(futures), loop=client.loop, with_results=False)
    while not pending.is_empty():
        if cancelEvent is not None and cancelEvent.is_set():
            return True
        if not pending.has_ready():
            time.sleep(POLL_SECONDS)
            continue
        for future in pending.next_batch(block=False):
            _collect(client, future, futures[future], steps, counts, records, state)
            del futures[future]  # only once collected: a Ctrl-C meanwhile leaves it to _cancelRunning
            report()
    return False


def _collect(client, future, case, steps, counts, records, state):
    from distributed import KilledWorker

    if future.status == "finished":
        record = future.result()
    elif future.cancelled():
        record = {"case": case["case"], "status": CaseTask.CANCELLED}
    else:
        error = future.exception()
        if isinstance(error, KilledWorker):
            message = (f"worker died {_allowedFailures(client) + 1} times while running this case (killed, out of "
                       "memory or crashed); given up")
        else:
            message = f"{type(error).__name__}: {error}"
        logging.error("Case %s: %s", case["case"], message)
        record = _failedRecord(case, steps, message)
    status = record.get("status")
    if status == CaseTask.CANCELLED:
        counts["cancelled"] += 1
        return
    counts["done" if status == CaseTask.DONE else "failed"] += 1
    records[case["case"]] = record
    state["durations"].append(float(record.get("seconds") or 0.0))
    state["last"] = case["case"]


def _cancelRunning(client, futures, eventName, steps, counts, records, state, report):
    """Cancel what has not started, tell running cases to stop, wait for them, collect what they return."""
    from distributed import Event

    Event(eventName, client=client).set()
    states = {}
    with contextlib.suppress(Exception):
        states = client.run_on_scheduler(_taskStates, keys=[future.key for future in futures])
    # Only what the scheduler still holds back is cancelled; a task sent to a worker may be running (Dask cannot
    # stop it): it sees the event and returns, and is waited for.
    notStarted = [future for future in futures if states.get(future.key) in UNSTARTED_STATES and not future.done()]
    if notStarted:
        client.cancel(notStarted)
    remaining = [future for future in futures if future not in notStarted]
    if remaining:
        logging.info("Waiting for %d running case(s) to stop", len(remaining))
        deadline = time.time() + CANCEL_WAIT_SECONDS
        while any(not future.done() for future in remaining) and time.time() < deadline:
            time.sleep(POLL_SECONDS)  # polled: distributed.wait() needs a default client, and ours is not one
    for future, case in list(futures.items()):
        if future in notStarted or not future.done():
            counts["cancelled"] += 1
            if not future.done():
                future.cancel()
            continue
        _collect(client, future, case, steps, counts, records, state)
    futures.clear()
    report()


def adoptRecordsWrittenMeanwhile(result, cases, outputDir, started):
    """After a cancelled run's workers stopped: remove what a stopped write left, count the cases that finished while
    they were being cancelled (their record is on disk, the runner saw no result) and rewrite the cohort outputs
    when there were any. Returns the result."""
    CaseTask.removeTemporaryLeftovers(*CaseTask.cohortFolders(os.path.abspath(outputDir), cases))
    before = len(result.records)
    records = {record["case"]: record for record in result.records}
    _adoptRecordsWrittenMeanwhile(cases, outputDir, records, result.counts, started)
    if len(records) != before:
        result.records = [records[case["case"]] for case in cases if case["case"] in records]
        result.outputs = _writeCohortOutputs(result.records, os.path.abspath(outputDir))
    return result


def _adoptRecordsWrittenMeanwhile(cases, outputDir, records, counts, started):
    """A case that finished while its task was being cancelled wrote its record all the same: count it."""
    for case in cases:
        path = CaseTask.recordPath(outputDir, case["case"])
        if case["case"] in records or not os.path.isfile(path) or os.path.getmtime(path) < started:
            continue
        with contextlib.suppress(OSError, ValueError):
            with open(path, encoding="utf-8") as file:
                record = json.load(file)
            records[case["case"]] = record
            counts["cancelled"] = max(counts["cancelled"] - 1, 0)
            counts["done" if record.get("status") == CaseTask.DONE else "failed"] += 1


def _taskStates(keys, dask_scheduler=None):  # noqa: N803 - the name Dask passes the scheduler by
    return {key: dask_scheduler.tasks[key].state for key in keys if key in dask_scheduler.tasks}


def _forgetEvent(client, eventName):
    from distributed import Event

    with contextlib.suppress(Exception):
        Event(eventName, client=client).clear()


def _progress(counts, started, state, toRunCount):
    elapsed = time.time() - started
    ran = counts["done"] + counts["failed"]
    remaining = None
    if ran:
        left = max(toRunCount - ran - counts["cancelled"], 0)
        remaining = elapsed / ran * left
    return Progress(counts["done"], counts["failed"], counts["skipped"], counts["total"], round(elapsed, 1),
                    None if remaining is None else round(remaining, 1), state["last"])


def _writeCohortOutputs(records, outputDir):
    """The cohort table, plots and report (Reports/CohortTable.py, CohortReport.py); {} when none is available."""
    outputs = {}
    try:
        from ..Reports.CohortReport import writeCohortOutputs
    except ImportError:
        writeCohortOutputs = None
    if writeCohortOutputs is not None:
        return dict(writeCohortOutputs(records, outputDir))
    with contextlib.suppress(ImportError):
        from ..Reports.CohortTable import writeCohortTables

        outputs.update(writeCohortTables(records, outputDir))
    return outputs


def runCasesInProcess(cases, outputDir, steps=CaseTask.STEPS, backend=None, backendOptions=None,
                      environment="auto", logic=None, cancelEvent=None):
    """The same cases one after another in this process (no Dask): the records. For comparisons and small runs."""
    cancelEvent = cancelEvent or threading.Event()
    return [CaseTask.runCase(case, outputDir, steps, backend, backendOptions, environment, cancelEvent=cancelEvent,
                             logic=logic) for case in cases]
