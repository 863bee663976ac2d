"""A GPU by its index (``device="cuda:1"``) for every backend: declared once (Backends/Options.py), validated before
any process starts, translated for each backend's own tool, and checked in the child against the machine's GPUs."""

import os
import sys

import pytest

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Backends.Backend import BackendContext
from AISegmentationLib.Backends.Options import validateOptions

BACKENDS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "AISegmentationLib", "Backends", "Child")


@pytest.fixture
def childTorch(monkeypatch):
    monkeypatch.syspath_prepend(BACKENDS_DIR)
    import ChildTorch

    yield ChildTorch
    sys.modules.pop("ChildTorch", None)


@pytest.mark.parametrize("name", ["totalsegmentator", "nnunet", "monaiauto3dseg", "moose"])
def test_every_backend_offers_a_gpu_by_index(name):
    options = [option for option in Registry.getBackend(name).options if not option.required]
    assert validateOptions(options, {"device": "cuda:1"})["device"] == "cuda:1"
    for wrong in ("cuda:8", "gpu", "cuda:one"):
        with pytest.raises(ValueError, match="Option 'device' must be one of auto, cpu, cuda, cuda:0"):
            validateOptions(options, {"device": wrong})


def test_moose_sees_only_the_chosen_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("AISEGMENTATION_MOOSE_HOME_DIR", str(tmp_path))
    backend = Registry.getBackend("moose")
    prepared = backend.prepare(BackendContext({}, dict), **validateOptions(backend.options, {"device": "cuda:1"}))
    assert prepared.environment == {"CUDA_VISIBLE_DEVICES": "1"} and prepared.childOptions["device"] == "cuda"
    assert prepared.parameters["device"] == "cuda:1"  # provenance names what was asked


def test_the_child_refuses_a_gpu_this_machine_lacks(childTorch):
    import torch

    from ChildProtocol import UserError

    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        assert childTorch.deviceName("cuda:0") == "cuda:0"
        with pytest.raises(UserError, match=f"this machine has {count} GPU"):
            childTorch.deviceName(f"cuda:{count}")
    else:
        with pytest.raises(UserError, match="'cuda' is not available in this environment"):
            childTorch.deviceName("cuda:1")
    with pytest.raises(UserError, match="Unknown device 'cuda:x'"):
        childTorch.deviceName("cuda:x")
    assert childTorch.deviceName("cpu") == "cpu"
