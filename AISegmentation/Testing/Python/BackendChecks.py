"""What the backends' slow tests check alike: a result's Dice per label; on a running job, that cancel ends the child's whole process tree and
that a child killed from outside (as the out-of-memory killer would) is a clear error. Each test starts its own long
run and keeps its own checks of the scene around these."""

import os
import signal
import time

import pytest
from DevTools.SyntheticImages import dice
from DevTools.TinyModels import segmentArrays

from AISegmentationLib.JobRunner import JobCancelledError


def requireLabelDice(logic, segmentation, volume, truth, labels, minimumDice=0.9):
    """The segmentation has one segment per label ({name: value}), each with a Dice of at least minimumDice against
    truth == value on the volume's grid; returns {name: Dice}."""
    arrays = segmentArrays(logic, segmentation, volume)
    assert set(arrays) == set(labels)
    scores = {name: dice(arrays[name], truth == value) for name, value in labels.items()}
    assert min(scores.values()) >= minimumDice, scores
    return scores


def processGroupGone(pid):
    """True when no live process is left in the process group (zombies awaiting their reaper count as gone)."""
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pid) and fields[0] != "Z":
            return False
    return True


def waitForStage(job, stage, prefix=False, settle=0.0, timeout=120):
    """Waits until the job's message is `stage` (or starts with it, with `prefix`) and its child runs, then `settle`
    seconds more."""
    def reached():
        return job.message.startswith(stage) if prefix else job.message == stage

    deadline = time.time() + timeout
    while not reached() and not job.done and time.time() < deadline:
        time.sleep(0.05)
    assert reached() and job.pid is not None, job.logLines()[-10:]
    time.sleep(settle)
    return job


def checkCancelEndsTheProcessTree(job, limit=5.0):
    """Cancels the running job: waiting raises JobCancelledError, the child's process group is gone within `limit`
    seconds and the job is cancelled. Returns the job's work folder (for the caller to check it is removed)."""
    pid, workDir = job.pid, os.path.dirname(job.steps[0].command[-1])
    start = time.time()
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait()
    while not processGroupGone(pid) and time.time() - start < limit:
        time.sleep(0.05)  # signalled; the kernel tears the process tree down
    assert time.time() - start < limit and processGroupGone(pid)
    assert job.state == "cancelled"
    return workDir


def checkKilledChildIsAClearError(job, match=r"was killed \(SIGKILL\).*ran out of memory"):
    """Kills the running job's child with SIGKILL, as the out-of-memory killer would: waiting raises a RuntimeError
    that says so and the job has failed."""
    os.kill(job.pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match=match):
        job.wait(timeout=30)
    assert job.state == "failed"
