"""The local nnInteractive server's inputs and refusals, checked before any process starts (quick: no environment,
no model, no server): device names, ports in use, model folders, versions, the download's consent."""

import os
import socket

import pytest

from AISegmentationLib.Interactive import ManagedServer as M
from AISegmentationLib.Interactive import ServerModels
from AISegmentationLib.Logic import AISegmentationLogic


def fakeModel(folder):
    """The layout of an nnInteractive model folder (empty files: enough for the checks, not for a server)."""
    os.makedirs(os.path.join(folder, "fold_0"))
    for name in ("plans.json", "dataset.json", os.path.join("fold_0", "checkpoint_final.pth")):
        open(os.path.join(folder, name), "w").close()
    return folder


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "MPS"])
def test_devices_accepted(device):
    assert M.requireDevice(device) == device.lower()


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "", None])
def test_unknown_device_is_refused(device):
    with pytest.raises(ValueError, match="Unknown device"):
        M.requireDevice(device)


def test_versions_must_share_major_and_minor():
    M.checkVersions("2.6.0", "2.6.3")
    M.checkVersions(None, "2.6.0")
    with pytest.raises(ValueError, match="client is version 2.6.0 but the server runs nnInteractive 2.5.1"):
        M.checkVersions("2.6.0", "2.5.1")


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ValueError, match=f"Port {port} on 127.0.0.1 is in use"):
            M.ManagedServer(os.__file__, fakeModel(str(tmp_path / "model")), port=port)
    with pytest.raises(ValueError, match="not a port number"):
        M.ManagedServer(os.__file__, str(tmp_path / "model"), port=70000)


def test_model_folders_are_checked_and_imported_once(tmp_path, monkeypatch):
    monkeypatch.setenv(ServerModels.MODELS_VARIABLE, str(tmp_path / "store"))
    with pytest.raises(ValueError, match="no plans.json"):
        ServerModels.importModel(str(tmp_path))
    assert not os.path.exists(tmp_path / "store")
    model = fakeModel(str(tmp_path / "tiny"))
    with pytest.raises(ValueError, match="No nnInteractive model on this computer"):
        ServerModels.defaultModel()
    imported = AISegmentationLogic.importInteractiveServerModel(model)
    assert AISegmentationLogic.interactiveServerModels() == {"tiny": imported}
    assert ServerModels.defaultModel() == imported and ServerModels.modelFold(imported) == "0"
    with pytest.raises(ValueError, match="exists already"):
        ServerModels.importModel(model)


def test_download_needs_agreement_and_starts_nothing(logic, tmp_path, monkeypatch):
    monkeypatch.setenv(ServerModels.MODELS_VARIABLE, str(tmp_path / "store"))
    with pytest.raises(ValueError, match="needs your agreement: pass agree=True"):
        logic.startDownloadInteractiveServerModel()
    assert not os.path.exists(tmp_path / "store")


def test_start_without_the_environment_says_how_to_create_it(logic, tmp_path):
    logic.localServer.interactiveServerEnvironmentsRoot = str(tmp_path)
    assert logic.interactiveServerEnvironmentDetails()["state"] == "missing"
    with pytest.raises(ValueError, match="environment is not created yet.*createInteractiveServerEnvironment"):
        logic.startInteractiveServer(modelDir=fakeModel(str(tmp_path / "model")))
    status = logic.interactiveServerStatus()
    assert status["state"] == "stopped" and status["url"] is None
    logic.stopInteractiveServer()  # nothing to stop: no error
