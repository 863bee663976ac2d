"""The ``batch`` subcommand of the headless CLI: a cohort of cases on Dask (see Cohort/).

    aisegmentation batch MANIFEST_OR_FOLDER --output DIR [--steps segment,compare,volumes] [--workers N]
        [--scheduler ADDRESS [--tls-ca-file CA --tls-cert CERT --tls-key KEY]] [--force] [BACKEND [its options]]

The backend of the segment step comes last, with its options generated from its declarations exactly as for
``segment BACKEND`` (``batch MANIFEST --output DIR BACKEND --help`` lists them), e.g.
``aisegmentation batch cohort.csv --output out BACKEND --device cpu``.
A rerun skips the finished cases; Ctrl-C cancels the cases not done and exits 130 after the summary; the exit code
is 2 when any case failed.
"""

import argparse
import shutil
import sys

from ..Backends import Registry
from ..Backends.AILogic import ENVIRONMENT_CHOICES
from ..Cohort.CohortLogic import CohortLogic
from .DicomOptions import PacsBatch, addDicomWebArguments
from .Segment import OPTION_PREFIX, addClusterArguments, addOptionArgument, allowClusterForThisRun, clusterSecurity

MAX_WARNINGS_PRINTED = 10


def addBatchParser(commands):
    """Add ``batch`` (and ``batch ... BACKEND``, one per registered backend) to the CLI's subparsers."""
    from ..Cohort.CaseTask import STEPS

    batch = commands.add_parser("batch", help="a cohort of cases (CSV manifest or folder) on Dask: segment, compare, "
                                              "volumes; table, plots and HTML report",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    batch.add_argument("manifest",
                       help="CSV manifest (case,image,reference,options,prediction) or a folder "
                            "(imagesTs/<case>_0000.nii.gz, labelsTs/<case>.nii.gz, <case>/ DICOM); with --dicomweb "
                            "it may be left out")
    batch.add_argument("--output", required=True, help="output folder of the cohort")
    batch.add_argument("--steps", default=",".join(STEPS),
                       help=f"comma-separated steps among {', '.join(STEPS)} (default: all)")
    batch.add_argument("--workers", type=int, help="worker processes of the local Dask cluster (default: from the "
                                                   "cores, the memory and the backend's memory estimate)")
    addClusterArguments(batch)
    addDicomWebArguments(batch)
    batch.add_argument("--force", action="store_true", help="redo every case, also those finished earlier")
    from .Common import addMatchArguments

    addMatchArguments(batch.add_argument_group("compare step"))
    batch.add_argument("--environment", default="auto",
                       help=f"Python of the backend on the workers: {', '.join(ENVIRONMENT_CHOICES)} or a Python "
                            "executable (default: auto)")
    backends = batch.add_subparsers(dest="backend", required=False, metavar="BACKEND",
                                    title="backend of the segment step (last, with its options)")
    for backend in Registry.allBackends().values():
        parser = backends.add_parser(backend.name, help=backend.help or backend.title, description=backend.help)
        for option in backend.options:
            addOptionArgument(parser, option)
    return batch


class ProgressLine:
    """One progress line on a terminal (rewritten in place), or plain lines when not a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._last = None

    def __call__(self, progress):
        width = 24
        ratio = progress.finished / progress.total if progress.total else 1.0
        bar = "#" * int(round(ratio * width))
        left = "" if progress.remaining is None else f", about {_duration(progress.remaining)} left"
        text = (f"[{bar:<{width}}] {progress.finished}/{progress.total} cases: {progress.done} done, "
                f"{progress.failed} failed, {progress.skipped} skipped{left}")
        if text == self._last:
            return
        self._last = text
        if self.interactive:
            columns = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + text[: columns - 1].ljust(columns - 1))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self):
        if self.interactive and self._last:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def quietDaskLog(verbose=False):
    """Dask's own INFO lines (scheduler, nannies, workers) only with -v: importing distributed sets its loggers'
    levels from its configuration, so they are lowered after that import."""
    import logging

    import distributed  # noqa: F401 - see above

    logging.getLogger("distributed").setLevel(logging.INFO if verbose else logging.WARNING)


def withManifestPlaceholder(argv):
    """argparse gives a lone positional to the BACKEND sub-command rather than to an optional manifest before it
    ("batch cohort.csv --output out" failed with "invalid choice: 'cohort.csv'"), so the manifest is a required
    positional; a PACS run (--dicomweb) written with options first gets an empty one, which means none."""
    argv = list(argv)
    if argv[:1] == ["batch"] and "--dicomweb" in argv and len(argv) > 1 and argv[1].startswith("-"):
        argv.insert(1, "")
    return argv


def runBatch(logic, args):
    quietDaskLog(getattr(args, "verbose", False))

    security = clusterSecurity(args)
    scheduler = allowClusterForThisRun(logic, args) if args.scheduler else None
    options = {}
    if args.backend:
        options = {option.name: getattr(args, OPTION_PREFIX + option.name)
                   for option in logic.backendOptions(args.backend)}
    pacs = PacsBatch(logic, args) if args.dicomweb else None
    runCohortOrPacs = pacs.run if pacs else CohortLogic(logic).runCohort
    progress = ProgressLine()
    try:
        result = runCohortOrPacs(args.manifest or None, args.output, steps=args.steps, backend=args.backend,
                                 backendOptions=options, scheduler=scheduler, security=security,
                                 workers=args.workers, environment=args.environment, force=args.force,
                                 match=args.match, mapping=args.mapping,
                                 progressCallback=progress,
                                 dashboardCallback=lambda link: print(f"Dask dashboard: {link or 'none'}",
                                                                      flush=True))
    finally:
        progress.end()
    printSummary(result)
    if pacs:
        pacs.finish(raiseOnFailure=not (result.cancelled or result.counts["failed"]))
    if result.cancelled:
        raise KeyboardInterrupt
    if result.counts["failed"]:
        raise ValueError(f"{result.counts['failed']} of {result.counts['total']} cases failed (see above and "
                         f"{result.outputs.get('report', 'the case records')})")


def printSummary(result):
    counts = result.counts
    print(f"Cohort: {counts['total']} cases: {counts['done']} done, {counts['failed']} failed, "
          f"{counts['skipped']} skipped (finished earlier), {counts['cancelled']} cancelled "
          f"in {_duration(result.seconds)}")
    for record in result.failedCases:
        print(f"  FAILED {record['case']}: {record.get('error')}")
    warnings = [(record["case"], warning) for record in result.records for warning in record.get("warnings") or []]
    for case, warning in warnings[:MAX_WARNINGS_PRINTED]:
        print(f"  warning {case}: {warning}")
    if len(warnings) > MAX_WARNINGS_PRINTED:
        print(f"  ... {len(warnings) - MAX_WARNINGS_PRINTED} more warnings in the report")
    for name, path in result.outputs.items():
        print(f"{name:>11}: {path}")
