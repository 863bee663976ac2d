"""Backend process trees end with the process that started them; liveness and window flags on every platform."""

import os
import signal
import subprocess
import sys
import time

import pytest

from AISegmentationLib import ProcessTree

BACKENDS_DIR = os.path.join(os.path.dirname(ProcessTree.__file__), "Backends", "Child")  # ChildWorker.py
MODULE_DIR = os.path.dirname(os.path.dirname(ProcessTree.__file__))
# A backend worker: ChildWorker's parent watch, then a grandchild (like nnU-Net's spawn pool); writes its PIDs.
WORKER = f"""
import subprocess, sys, time
sys.path.insert(0, {BACKENDS_DIR!r})
import ChildWorker
ChildWorker._endWithParent()
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1], "w") as file:
    file.write(f"{{__import__('os').getpid()}} {{grandchild.pid}}")
time.sleep(600)
"""
PLAIN = "import sys, time; open(sys.argv[1], 'w').write('started'); time.sleep(600)"
# The process that starts the job (Slicer): writes the PID of the job's direct child, then waits to be killed or
# (with "exit") leaves Python normally while the job still runs.
STARTER = """
import sys, time
sys.path.insert(0, {moduleDir!r})
from AISegmentationLib.JobRunner import BackgroundJob, ProcessStep
command, pidFile, ending = {command!r}, {pidFile!r}, {ending!r}
job = BackgroundJob("tree", [ProcessStep(command, "tree")]).start()
while job.pid is None:
    time.sleep(0.02)
open(pidFile, "w").write(str(job.pid))
time.sleep(2.0 if ending == "exit" else 600)
"""


def _waitForFile(path, timeout=20.0):
    deadline = time.time() + timeout
    while not (os.path.exists(path) and open(path, encoding="ascii").read().strip()) and time.time() < deadline:
        time.sleep(0.05)
    return [int(value) for value in open(path, encoding="ascii").read().split() if value.isdigit()]


def _allGone(pids, timeout=10.0):
    deadline = time.time() + timeout
    while any(ProcessTree.processAlive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.1)
    return [pid for pid in pids if ProcessTree.processAlive(pid)]


def _launcher(tmp_path):
    """A launcher like desktop Slicer's PythonSlicer: it runs the interpreter as its child (no exec)."""
    path = tmp_path / "PythonSlicer"
    path.write_text('#!/bin/sh\n"$@"\nexit $?\n')
    path.chmod(0o755)
    return str(path)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups; Windows uses a Job object")
@pytest.mark.parametrize("mode", ["isolated", "current-through-launcher"])
def test_worker_tree_ends_when_the_starting_process_is_killed(tmp_path, mode):
    workerPids, childPid = tmp_path / "worker.pids", tmp_path / "child.pid"
    command = [sys.executable, "-c", WORKER, str(workerPids)]
    if mode != "isolated":
        command = [_launcher(tmp_path)] + command
    starter = subprocess.Popen([sys.executable, "-c", STARTER.format(
        moduleDir=MODULE_DIR, command=command, pidFile=str(childPid), ending="killed")])
    try:
        pids = _waitForFile(str(workerPids)) + _waitForFile(str(childPid))
        assert len(pids) == 3 and all(ProcessTree.processAlive(pid) for pid in pids)
        starter.send_signal(signal.SIGKILL)  # Slicer crashes or is killed during a job
        starter.wait()
        assert _allGone(pids) == []
    finally:
        starter.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_any_child_ends_when_the_starting_process_is_killed(tmp_path):
    started, childPid = tmp_path / "started", tmp_path / "child.pid"
    starter = subprocess.Popen([sys.executable, "-c", STARTER.format(
        moduleDir=MODULE_DIR, command=[sys.executable, "-c", PLAIN, str(started)], pidFile=str(childPid),
        ending="killed")])
    try:
        _waitForFile(str(started))
        pids = _waitForFile(str(childPid))
        starter.send_signal(signal.SIGKILL)
        starter.wait()
        assert _allGone(pids, timeout=15.0) == []  # a loaded CI machine took over 5 s once
    finally:
        starter.kill()


def test_running_trees_end_when_python_exits_normally(tmp_path):
    workerPids, childPid = tmp_path / "worker.pids", tmp_path / "child.pid"
    command = [_launcher(tmp_path), sys.executable, "-c", WORKER.replace("ChildWorker._endWithParent()", ""),
               str(workerPids)]  # nothing but the exit of the starter ends this tree
    starter = subprocess.Popen([sys.executable, "-c", STARTER.format(
        moduleDir=MODULE_DIR, command=command, pidFile=str(childPid), ending="exit")])
    pids = _waitForFile(str(workerPids)) + _waitForFile(str(childPid))
    assert starter.wait(timeout=30) == 0  # Slicer quits normally while the job runs
    assert _allGone(pids, timeout=15.0) == []  # a loaded CI machine took over 5 s once


def test_windows_liveness_uses_the_process_handle_never_a_signal():
    closed = []

    def check(handle, exitCode, error=0):
        return ProcessTree.windowsProcessAlive(1234, lambda access, inherit, pid: handle,
                                               lambda opened: exitCode, closed.append, lambda: error)

    assert check(7, ProcessTree.STILL_ACTIVE) is True and closed == [7]
    assert check(8, 0) is False and closed == [7, 8]
    assert check(0, None, error=ProcessTree.ERROR_ACCESS_DENIED) is True  # another user's process: it exists
    assert check(0, None, error=87) is False  # ERROR_INVALID_PARAMETER: no such process
    assert ProcessTree.windowsProcessAlive(0, None, None, None, None) is False
    if sys.platform != "win32":  # the Windows branch binds kernel32; it never falls back to os.kill(pid, 0)
        with pytest.raises((AttributeError, OSError)):
            ProcessTree.processAlive(os.getpid(), platform="win32")


def test_posix_liveness():
    assert ProcessTree.processAlive(os.getpid())
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    assert not ProcessTree.processAlive(int(finished.stdout))
    assert not ProcessTree.processAlive(-1) and not ProcessTree.processAlive(None)


def test_children_get_no_console_window_on_windows_and_a_session_elsewhere():
    windows = ProcessTree.childPopenOptions("win32")
    assert windows["creationflags"] & 0x08000000 and windows["creationflags"] & 0x200  # NO_WINDOW, NEW_GROUP
    assert "start_new_session" not in windows and "preexec_fn" not in windows
    linux = ProcessTree.childPopenOptions("linux")
    assert linux["start_new_session"] is True and callable(linux["preexec_fn"])
    assert ProcessTree.childPopenOptions("darwin") == {"start_new_session": True}
    assert ProcessTree.hiddenWindow("win32") == {"creationflags": 0x08000000}
    assert ProcessTree.hiddenWindow("linux") == {}
