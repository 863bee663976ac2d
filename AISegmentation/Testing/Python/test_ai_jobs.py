"""The job runner and the environment states with real child processes (plain Python children: fast, no backend).

The child scripts below speak the same protocol as ChildWorker.py (ChildProtocol.Channel); they stand in for a
backend only where the behaviour under test is the runner's own (process tree, exit codes, streams).
"""

import json
import os
import sys
import time

import pytest

from AISegmentationLib.Backends.Environments import Environments
from AISegmentationLib.JobRunner import BackgroundJob, JobCancelledError, ProcessStep

BACKENDS_DIR = os.path.join(os.path.dirname(os.path.dirname(Environments.__file__)), "Child")
PROTOCOL_CHILD = f"""
import sys, time
sys.path.insert(0, {BACKENDS_DIR!r})
from ChildProtocol import Channel, watchOutput
channel = Channel()
print("printed text goes to the log")
channel.stage(0, 50, "Half")
watchOutput(channel)
sys.stderr.write("  40%|####      | 4/10\\r")
sys.stderr.flush()
time.sleep(0.3)
channel.result(info={{"answer": 42}})
"""
TREE_CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(grandchild.pid, flush=True)
time.sleep(600)
"""


def _job(code, protocol=False, **kwargs):
    step = ProcessStep([sys.executable, "-c", code], "Test step", protocol=protocol)
    return BackgroundJob("Test job", [step], **kwargs)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper is gone for our purpose
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def test_protocol_progress_log_result_and_finalize_in_caller_thread():
    import threading

    threads = []
    job = _job(PROTOCOL_CHILD, protocol=True, finalize=lambda finished: threads.append(threading.current_thread())
               or finished.childResult["info"]["answer"]).start()
    seen = []
    assert job.wait(progressCallback=lambda percent, message: seen.append((percent, message))) == 42
    assert threads == [threading.current_thread()]
    assert "printed text goes to the log" in job.logLines()
    assert not any("40%|" in line for line in job.logLines() if not line.startswith("$ "))  # progress, not log
    assert (20.0, "Half") in seen and seen[-1] == (100.0, "Finished")
    assert job.takeLogLines() and job.takeLogLines() == []


def test_cancel_ends_the_whole_process_tree_quickly_and_runs_cleanup():
    cleaned = []
    job = _job(TREE_CHILD, cleanup=lambda: cleaned.append(True)).start()
    deadline = time.time() + 10
    while not any(line.isdigit() for line in job.logLines()) and time.time() < deadline:
        time.sleep(0.05)
    grandchild = int(next(line for line in job.logLines() if line.isdigit()))
    child = job.pid
    start = time.time()
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait()
    while (_alive(child) or _alive(grandchild)) and time.time() - start < 5:
        time.sleep(0.05)  # the signals are sent; the kernel tears the processes down
    assert time.time() - start < 5 and cleaned == [True]
    assert not _alive(child) and not _alive(grandchild)


def test_non_zero_exit_signal_and_missing_result_become_clear_errors():
    with pytest.raises(RuntimeError, match=r"exited with code 3\. Last output: boom"):
        _job("import sys; print('boom'); sys.exit(3)").start().wait()
    with pytest.raises(RuntimeError, match=r"crashed \(SIGSEGV\)"):
        _job("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)").start().wait()
    with pytest.raises(RuntimeError, match="ended without a result"):
        _job("print('no protocol message')", protocol=True).start().wait()
    error = json.dumps({"type": "error", "kind": "ValueError", "message": "bad option"})
    with pytest.raises(ValueError, match="Test job failed: bad option"):
        _job(f"import sys; print({error!r}); sys.exit(2)", protocol=True).start().wait()
    with pytest.raises(RuntimeError, match="could not run the backend process"):
        BackgroundJob("Test job", [ProcessStep(["/nonexistent/python"], "Missing")]).start().wait()


def test_ctrl_c_while_waiting_cancels_the_job_ends_its_tree_and_re_raises():
    cleaned = []
    job = _job(TREE_CHILD, cleanup=lambda: cleaned.append(True)).start()

    pids = []
    deadline = time.time() + 30  # the grandchild runs once its PID is logged (the callback below only sees changes
    while not any(line.isdigit() for line in job.logLines()) and time.time() < deadline:  # of progress: wait here)
        time.sleep(0.05)

    def interruptOnceTheGrandchildRuns(percent, message):
        if any(line.isdigit() for line in job.logLines()):
            pids.append(job.pid)
            raise KeyboardInterrupt  # what Ctrl-C raises in the waiting thread (the Python console)

    with pytest.raises(KeyboardInterrupt):
        job.wait(timeout=20, progressCallback=interruptOnceTheGrandchildRuns)
    grandchild = int(next(line for line in job.logLines() if line.isdigit()))
    assert job.done and job.state == "cancelled" and cleaned == [True]
    deadline = time.time() + 5
    while (_alive(pids[0]) or _alive(grandchild)) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(pids[0]) and not _alive(grandchild)


def test_wait_timeout_keeps_the_job_running():
    job = _job("import time; time.sleep(600)").start()
    with pytest.raises(TimeoutError):
        job.wait(timeout=0.3)
    assert not job.done and job.state == "running"
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait()


def test_environment_states(tmp_path):
    manager = Environments.EnvironmentManager(str(tmp_path))
    assert manager.status("nnunet") == "missing"
    assert "createBackendEnvironment('nnunet')" in manager.details("nnunet")["message"]
    folder = tmp_path / "nnunet"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "python").write_text("")
    manager._writeState("nnunet", state="ready", requirementsSha256=Environments._sha256(
        Environments.requirementsFile("nnunet")))
    assert manager.status("nnunet") == "ready"
    manager._writeState("nnunet", state="ready", requirementsSha256="old")
    assert manager.details("nnunet")["message"].startswith("Its requirements changed")
    manager._writeState("nnunet", state="installing", pid=os.getpid())
    assert manager.status("nnunet") == "installing"
    with pytest.raises(ValueError, match="already being installed"):
        manager.startJob("nnunet")
    manager._writeState("nnunet", state="installing", pid=2 ** 22 + 12345)
    assert manager.status("nnunet") == "broken" and "interrupted" in manager.details("nnunet")["message"]
    (folder / "bin" / "python").unlink()
    manager._writeState("nnunet", state="ready")
    assert manager.status("nnunet") == "broken"
    manager.remove("nnunet")
    assert manager.status("nnunet") == "missing"
    with pytest.raises(ValueError, match="Unknown backend environment 'nope'"):
        manager.status("nope")
    assert Environments.environmentNames() == ["monaiauto3dseg", "moose", "nnunet", "totalsegmentator"]


def test_isolated_child_environment_drops_variables_that_leak_packages(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/somewhere/slicer/site-packages")
    monkeypatch.setenv("PYTHONHOME", "/somewhere")
    isolated = Environments.childEnvironment(True, {"TOTALSEG_HOME_DIR": "/home"})
    assert "PYTHONPATH" not in isolated and "PYTHONHOME" not in isolated and isolated["PYTHONNOUSERSITE"] == "1"
    assert isolated["TOTALSEG_HOME_DIR"] == "/home"
    assert Environments.childEnvironment(False)["PYTHONPATH"] == "/somewhere/slicer/site-packages"


def test_importing_the_ai_logic_installs_nothing(tmp_path):
    import subprocess

    moduleDir = os.path.dirname(os.path.dirname(os.path.dirname(BACKENDS_DIR)))
    env = dict(os.environ, AISEGMENTATION_ENVIRONMENTS_DIR=str(tmp_path / "environments"))
    subprocess.run([sys.executable, "-c", "import AISegmentationLib.Backends.AILogic"], cwd=moduleDir, env=env,
                   check=True)
    assert not (tmp_path / "environments").exists()


def test_backend_process_ends_when_the_process_that_started_it_dies():
    import subprocess

    child = (f"import sys, time; sys.path.insert(0, {BACKENDS_DIR!r}); import ChildWorker; "
             f"ChildWorker._endWithParent(); time.sleep(600)")
    parent = (f"import subprocess, sys, time; process = subprocess.Popen([sys.executable, '-c', {child!r}], "
              f"start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); print(process.pid); "
              f"time.sleep(1.5)")  # the parent dies while the child runs
    pid = int(subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True).stdout)
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
