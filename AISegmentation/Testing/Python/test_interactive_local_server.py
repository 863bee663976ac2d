"""The local nnInteractive server that AISegmentation starts itself ("Start local server"), with the tiny model on
CPU: start, status, a prompt answered, the key (never in the scene or a log; a wrong one refused), stop, and the
command line's start / status with its server ended when that process is SIGKILLed.

One server for the logic tests of this module, one for the command line (the server environment and the tiny model
are the shared caches of DevTools/InteractiveServers).
"""

import json
import logging
import os
import signal
import subprocess
import time

import pytest

from CommandLineProcess import cliCommand, cliEnvironment
from InteractiveScenes import CENTER_A, TwoSpheres
from DevTools.InteractiveServers import environment, skipWithoutServers, tinyModel
from DevTools.SyntheticImages import dice
from AISegmentationLib.ProcessTree import processAlive
from AISegmentationLib.Interactive.Consent import ConsentStore
from AISegmentationLib.Logic import AISegmentationLogic

pytestmark = pytest.mark.slow


def groupMembers(groupId):
    """PIDs of the living processes of a process group (Linux /proc)."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="ascii") as file:
                    fields = file.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == groupId and fields[0] != "Z":
                members.append(int(name))
    return members


def waitGone(groupId, timeout=20.0):
    deadline = time.monotonic() + timeout
    while groupMembers(groupId) and time.monotonic() < deadline:
        time.sleep(0.2)
    return groupMembers(groupId)


@pytest.fixture(scope="module")
def modelDir():
    skipWithoutServers()
    environment("current")  # created (or found) the way the tests share it
    return tinyModel()


@pytest.fixture(scope="module")
def started(modelDir):
    """A logic whose local server is running; its start is logged at DEBUG to look for the key."""
    records = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(record.getMessage())
    root = logging.getLogger()
    previousLevel = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    owner = AISegmentationLogic()
    try:
        status = owner.startInteractiveServer(device="auto", modelDir=modelDir, threads=2)
    finally:
        root.removeHandler(handler)
        root.setLevel(previousLevel)
    yield owner, status, records
    owner.stopInteractiveServer()


def test_status_of_the_started_server(started):
    owner, status, _ = started
    assert status["state"] == "running" and status["healthy"], status
    assert status["url"].startswith("http://127.0.0.1:") and status["device"] == "cpu"
    assert "CPU" in status["description"] and "seconds" in status["description"]
    assert status["version"].startswith("2.6") and status["startSeconds"] > 0
    assert owner.interactiveServerStatus()["pid"] == status["pid"]


def test_a_prompt_is_answered_and_the_key_stays_private(started, logic, caplog):
    owner, status, startLog = started
    caplog.set_level(logging.DEBUG)
    owner.runtime = logic.runtime  # the test's scene
    owner.setInteractiveConsentStore(ConsentStore(None))
    spheres = TwoSpheres(owner)
    target = spheres.segment("target")
    owner.startInteractiveSegmentation(spheres.volume, spheres.segmentation, target)
    owner.interactivePoint(spheres.ras(CENTER_A))
    assert dice(spheres.array(target) & spheres.maskA, spheres.maskA) >= 0.9
    key = owner.managedInteractiveServer.apiKey
    assert len(key) >= 32
    owner.scene.SetSaveToXMLString(1)
    owner.scene.Commit()
    assert key not in owner.scene.GetSceneXMLString()
    assert key not in caplog.text and not any(key in line for line in startLog)
    assert key not in owner.managedInteractiveServer.logTail(10 ** 7)


def test_a_wrong_or_missing_key_is_refused(started, logic):
    _, status, _ = started
    other = AISegmentationLogic(logic.runtime)
    other.setInteractiveServer(status["url"], apiKey="wrong-key")
    ok, message, _ = other.testInteractiveConnection()
    assert not ok and "rejected" in message and "wrong-key" not in message
    other.setInteractiveServer(status["url"])
    ok, message, _ = other.testInteractiveConnection()
    assert not ok and "requires an API key" in message


def test_a_second_start_and_a_taken_port_are_refused(started, modelDir):
    owner, status, _ = started
    with pytest.raises(ValueError, match="running already"):
        owner.startInteractiveServer(modelDir=modelDir)
    port = int(status["url"].rsplit(":", 1)[1])
    with pytest.raises(ValueError, match=f"Port {port} on 127.0.0.1 is in use"):
        AISegmentationLogic().startInteractiveServer(modelDir=modelDir, port=port)


def test_stop_ends_the_whole_process_tree(started):
    owner, status, _ = started
    assert groupMembers(status["pid"])
    owner.stopInteractiveServer()
    assert waitGone(status["pid"], 5.0) == []
    assert owner.interactiveServerStatus()["state"] == "stopped"
    owner.stopInteractiveServer()  # idempotent


def test_command_line_start_status_and_sigkill_of_its_process(modelDir, tmp_path):
    env = dict(cliEnvironment(), XDG_DATA_HOME=str(tmp_path))
    stateFile = tmp_path / "AISegmentation" / "interactive-server.json"
    starter = subprocess.Popen(cliCommand("interactive-server", "start", "--model-dir", modelDir, "--device", "cpu",
                                          "--threads", "2"), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while not stateFile.exists() and starter.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert stateFile.exists(), starter.communicate(timeout=30)
        state = json.loads(stateFile.read_text())
        keyFile = tmp_path / "AISegmentation" / "interactive-server.key"
        assert state["keyFile"] == str(keyFile) and oct(keyFile.stat().st_mode & 0o777) == "0o600"
        status = subprocess.run(cliCommand("interactive-server", "status"), env=env, capture_output=True, text=True,
                                timeout=300)
        assert f"Running at {state['url']}" in status.stdout and "health check: ok" in status.stdout, status
        assert keyFile.read_text().strip() not in status.stdout + status.stderr
        assert groupMembers(state["serverPid"])
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(30)
        assert waitGone(state["serverPid"]) == [], "the server outlived the killed command line"
        after = subprocess.run(cliCommand("interactive-server", "stop"), env=env, capture_output=True, text=True,
                               timeout=300)
        assert after.returncode == 0 and "not running" in after.stdout
    finally:
        if starter.poll() is None:
            starter.kill()
