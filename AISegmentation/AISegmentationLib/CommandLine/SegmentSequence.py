"""``aisegmentation segment BACKEND INPUT --sequence --output FOLDER``: every frame of a 4D NIfTI or of a folder of 3D
frames (natural order by name) through the backend (Backends/Sequences/). The folder receives one segmentation per
frame (``<frame>.seg.nrrd``), ``volumes.csv`` (each structure's volume in mL per frame) and ``volumes.png`` (those
volumes over the frames). The files are written into a temporary folder first and moved in once every frame is
done: a refused, failed or interrupted run writes nothing. ``--scheduler local`` spreads the frames over a
Dask LocalCluster of ``--workers`` processes on this computer; an address over that cluster (TLS beyond this
machine)."""

import os
import shutil
import tempfile

from ..AtomicWrite import requireWritableOutput
from ..Backends.Sequences.SequenceFiles import fourDFrameCount, loadSequenceFiles
from ..Backends.Sequences.SequenceOutputs import plotVolumes, writeVolumeCsv

TABLE_NAME, PLOT_NAME = "volumes.csv", "volumes.png"


def requireSequenceArguments(args):
    """ValueError for arguments that mean nothing with --sequence (before anything is loaded)."""
    if len(args.volumes) != 1:
        raise ValueError("--sequence takes one input: a 4D NIfTI file or a folder of frames")
    for flag, value in (("--segmentation", args.segmentation), ("--labelmap-output", args.labelmap_output)):
        if value:
            raise ValueError(f"{flag} cannot be used with --sequence (the output is a folder of segmentations)")
    output = os.path.abspath(args.output)
    if os.path.exists(output) and not os.path.isdir(output):
        raise ValueError(f"With --sequence the output is a folder, and '{output}' is a file")
    requireWritableOutput(os.path.join(output, TABLE_NAME))
    return output


def requireNotSequence(path):
    """ValueError for a 4D NIfTI given as one volume: only its first frame would be segmented."""
    frames = fourDFrameCount(path)
    if frames:
        raise ValueError(f"'{path}' is a 4D image of {frames} frames: add --sequence (and an output folder) to "
                         "segment every frame")


def _uniqueNames(names):
    return names if len(set(names)) == len(names) else [f"{number:04d}_{name}" for number, name in enumerate(names)]


def runSegmentSequence(logic, args, options, cluster, waitForJob):
    """Segment every frame; cluster: {} or {"cluster": address or "local", "clusterSecurity", "workers"};
    waitForJob(job) waits and cancels the job on Ctrl-C / SIGTERM."""
    output = requireSequenceArguments(args)
    frames = loadSequenceFiles(logic, args.volumes[0])
    staging = tempfile.mkdtemp(prefix="AISegmentation-sequence-")
    try:
        names = dict(zip((value for value, _, _ in frames), _uniqueNames([name for _, _, name in frames])))
        job = logic.startBackendOnSequence(args.backend, [node for _, node, _ in frames], environment=args.environment,
                                           onFrame=lambda value, segmentation, volume: logic.saveSegmentation(
                                               segmentation, os.path.join(staging, f"{names[value]}.seg.nrrd")),
                                           **cluster, **options)
        segmentations, table = waitForJob(job)
        files = [f"{names[value]}.seg.nrrd" for value, _ in job.rows]
        writeVolumeCsv(os.path.join(staging, TABLE_NAME), job.rows, "frame", files)
        plotVolumes(os.path.join(staging, PLOT_NAME), job.rows, "frame")
        os.makedirs(output, exist_ok=True)
        for name in [*files, TABLE_NAME, PLOT_NAME]:
            shutil.move(os.path.join(staging, name), os.path.join(output, name))
        for node in (segmentations, table, job.browser):
            logic.scene.RemoveNode(node)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for _, node, _ in frames:
            logic.scene.RemoveNode(node)
    print(f"Segmentations of {len(files)} frames, {TABLE_NAME} and {PLOT_NAME} in {output}")
    for (value, volumes), file in zip(job.rows, files):
        shown = ", ".join(f"{structure} {volume:.2f} mL" for structure, volume in volumes.items())
        print(f"  {file:<32} {shown}")
    return output
