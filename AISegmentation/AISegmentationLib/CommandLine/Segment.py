"""The ``segment`` subcommand of the headless CLI: AI segmentation with any registered backend.

    aisegmentation segment BACKEND INPUT... [backend options] --output OUT.seg.nrrd
        [--scheduler tls://host:8786 --tls-ca-file CA --tls-cert CERT --tls-key KEY]

One sub-subcommand per backend, generated from its declarations (Backends/: its options become
arguments with their type, choices, default and help; its actions, e.g. importing weights, become arguments run
before the job); ``segment BACKEND --help`` lists them. Wired into Main.py with
``addSegmentParser(commands)`` and ``COMMANDS["segment"] = runSegment``. The backend runs out of process (its
isolated environment when created, see --create-environment). Ctrl-C or SIGTERM while it runs cancels the job (its
whole process tree ends) before the command exits; errors, exit codes and -v are handled by Main.main.

With ``--scheduler`` the case runs on that Dask cluster instead (AILogic's ``cluster=``): passing the address is the
consent to send the image there, for this run only (nothing is remembered); beyond this machine only over TLS.
"""

import argparse
import contextlib
import logging

from ..Backends import Registry
from ..Backends.AILogic import ENVIRONMENT_CHOICES
from ..Backends.Jobs.ResultExtras import saveExtras
from ..Backends.Options import parseText
from ..Consent import ConsentStore
from .DicomOptions import addDicomOutputArguments, sourceSeries, writeDicomOutputs
from .SegmentSequence import requireNotSequence, runSegmentSequence

OPTION_PREFIX, ACTION_PREFIX = "option_", "action_"  # argparse destinations of backend options and actions


def _addCommonOptions(parser):
    parser.add_argument("--output", required=True, help="output segmentation file (.seg.nrrd)")
    parser.add_argument("--segmentation", help="existing .seg.nrrd to write into (default: a new segmentation)")
    parser.add_argument("--labelmap-output", help="also export all segments as a label-map image (e.g. .nii.gz)")
    addDicomOutputArguments(parser)
    parser.add_argument("--environment", default="auto",
                        help=f"Python to run the backend: {', '.join(ENVIRONMENT_CHOICES)} or a Python executable "
                             f"(default: auto = its isolated environment when ready, else the current Python)")
    parser.add_argument("--create-environment", action="store_true",
                        help="create (or repair) the backend's isolated environment first")
    addClusterArguments(parser)
    parser.add_argument("--sequence", action="store_true",
                        help="INPUT is a sequence: a 4D NIfTI or a folder of 3D frames (natural order by name); "
                             "--output is then a folder: one .seg.nrrd per frame, volumes.csv and volumes.png "
                             "(structure volumes per frame); --scheduler local or an address spreads the frames")
    parser.add_argument("--workers", type=int, help="with --sequence --scheduler local: Dask worker processes "
                                                    "(default 2)")
    parser.add_argument("--accept-irregular-spacing", action="store_true",
                        help="load a DICOM series with a missing slice or an uneven slice spacing anyway, resampled "
                             "onto a regular grid (recorded in the volume's provenance); refused by default")


def addClusterArguments(parser):
    """--scheduler and the TLS files of a client (see clusterSecurity)."""
    parser.add_argument("--scheduler", help="run on the Dask cluster at this scheduler address (tls://host:8786; "
                                            "plain tcp:// only on this machine); passing it is the consent to send "
                                            "the image there")
    parser.add_argument("--tls-ca-file", help="CA certificate (PEM) that signed the scheduler's certificate")
    parser.add_argument("--tls-cert", help="this client's certificate (PEM)")
    parser.add_argument("--tls-key", help="this client's private key (PEM)")


def clusterSecurity(args):
    """distributed.security.Security from --tls-ca-file, --tls-cert and --tls-key, or None when none is given."""
    from ..Cluster.ClusterConnection import makeSecurity

    files = (args.tls_ca_file, args.tls_cert, args.tls_key)
    return makeSecurity(*files) if any(files) else None


def allowClusterForThisRun(logic, args):
    """Passing --scheduler is the consent to send images there, for this run only (kept in memory): the address."""
    logic.setClusterConsentStore(ConsentStore(None))
    return logic.allowCluster(args.scheduler)


def _valueParser(option):
    def parse(text):
        try:
            return parseText(option, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = option.type
    return parse


def _helpText(option):
    text = option.help.replace("%", "%%") + (f" ({option.unit})" if option.unit else "")
    if option.default is not None and not isinstance(option.default, bool):
        text += " (default: %(default)s)"
    return text


def addOptionArgument(parser, option):
    """One argparse argument for a BackendOption (stored as args.option_<name>)."""
    dest = OPTION_PREFIX + option.name
    if option.type == "bool" and not option.multiple:
        if option.default is True:
            parser.add_argument(f"--no-{option.cliFlag}", dest=dest, action="store_false", default=True,
                                help=f"switch off: {option.help}")
        elif option.default is None:
            parser.add_argument(f"--{option.cliFlag}", dest=dest, action=argparse.BooleanOptionalAction,
                                default=None, help=option.help)
        else:
            parser.add_argument(f"--{option.cliFlag}", dest=dest, action="store_true", help=option.help)
        return
    keywords = dict(dest=dest, type=_valueParser(option), default=option.default, help=_helpText(option),
                    required=option.required, metavar=option.cliFlag.replace("-", "_").upper())
    if option.choices:
        keywords.update(choices=option.choices, metavar=None)
    if option.multiple:
        keywords.update(nargs="+", action="extend", default=None)
        keywords["help"] += " (several values, or repeat the option)"
    parser.add_argument(f"--{option.cliFlag}", **keywords)


def addBackendParser(backends, backend):
    """The ``segment <backend>`` parser, generated from the backend's declarations."""
    parser = backends.add_parser(backend.name, help=backend.help or backend.title, description=backend.help)
    single = backend.maxInputs == 1
    parser.add_argument("volumes", nargs=1 if single else "+", metavar="INPUT",
                        help="input volume" if single else "input volume(s), in the model's channel order")
    for option in backend.options:
        addOptionArgument(parser, option)
    for action in backend.actions:
        parser.add_argument(f"--{action.cliFlag}", dest=ACTION_PREFIX + action.name, metavar=action.metavar,
                            help=action.help)
    _addCommonOptions(parser)
    return parser


def addSegmentParser(subparsers):
    """Add ``segment <backend>`` for every registered backend to the CLI's subparsers."""
    backends = Registry.allBackends()
    titles = ", ".join(backend.title for backend in backends.values())
    segment = subparsers.add_parser("segment", help=f"AI segmentation: {titles}")
    choices = segment.add_subparsers(dest="backend", required=True)
    for backend in backends.values():
        addBackendParser(choices, backend)
    return segment


def _progress(percent, message, state={"last": None}):  # noqa: B006 - remembers the last line printed
    if message != state["last"]:
        state["last"] = message
        logging.info("%3.0f %% %s", percent, message)


JOB_CANCEL_SECONDS = 30


def _waitForJob(job):
    """Wait for a backend job; when the wait is interrupted (Ctrl-C, SIGTERM), cancel the job and give its process
    tree time to end before the interruption goes on."""
    try:
        return job.wait(progressCallback=_progress)
    except BaseException:
        if not job.done:
            job.cancel()
            with contextlib.suppress(Exception):
                job.wait(timeout=JOB_CANCEL_SECONDS)
        raise


def backendOptions(logic, args):
    """{option name: value} of the backend's options from the parsed arguments."""
    return {option.name: getattr(args, OPTION_PREFIX + option.name) for option in logic.backendOptions(args.backend)}


def runSegment(logic, args):
    backend = args.backend
    if args.create_environment:
        _waitForJob(logic.startCreateBackendEnvironment(backend))
        details = logic.backendEnvironmentDetails(backend)
        print(f"Environment '{details['name']}': {details['state']} ({details['folder']})")
    for action in logic.backendActions(backend):
        value = getattr(args, ACTION_PREFIX + action.name)
        if value:
            result = logic.runBackendAction(backend, action.name, value)
            print(f"{action.resultTitle or action.name}: {', '.join(map(str, result))}")
    if args.sequence:
        return _runSequence(logic, args)
    for path in args.volumes:
        requireNotSequence(path)
    volumes = [logic.loadVolume(path, acceptIrregularSpacing=args.accept_irregular_spacing) for path in args.volumes]
    series = sourceSeries(args, args.volumes[0])
    segmentation = logic.loadSegmentation(args.segmentation, sourceSeries=series) if args.segmentation else None
    cluster = {}
    if args.scheduler:
        cluster = {"cluster": allowClusterForThisRun(logic, args), "clusterSecurity": clusterSecurity(args)}
    job = logic.startBackend(backend, volumes, segmentation, args.environment, **cluster,
                             **backendOptions(logic, args))
    segmentation = _waitForJob(job)
    writeDicomOutputs(logic, args, segmentation, args.volumes[0])  # first: a refusal leaves nothing written
    print(f"Segmentation: {logic.saveSegmentation(segmentation, args.output)}")
    for path in saveExtras(segmentation, args.output):  # e.g. a statistics table, probability volumes
        print(f"Also: {path}")
    if args.labelmap_output:
        print(f"Label map: {logic.exportLabelmap(segmentation, volumes[0], args.labelmap_output)[0]}")
    print(f"{segmentation.GetAttribute('AISegmentation.backend')} on "
          f"{segmentation.GetAttribute('AISegmentation.device')} in "
          f"{segmentation.GetAttribute('AISegmentation.durationSeconds')} s")
    if args.scheduler:
        print(f"Ran on {segmentation.GetAttribute('AISegmentation.environment')}")
    for row in logic.segmentStatistics(segmentation, volumes[0]):
        print(f"  {row['segment']:<24} {row['voxels']:>10} voxels {row['volumeMl']:>12.2f} mL")


def _runSequence(logic, args):
    """segment BACKEND INPUT --sequence (CommandLine/SegmentSequence.py); --scheduler local: a LocalCluster here."""
    cluster = {}
    if args.scheduler == "local":
        cluster = {"cluster": "local", "workers": args.workers}
    elif args.scheduler:
        cluster = {"cluster": allowClusterForThisRun(logic, args), "clusterSecurity": clusterSecurity(args)}
    return runSegmentSequence(logic, args, backendOptions(logic, args), cluster, _waitForJob)
