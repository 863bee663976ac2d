"""The PyTorch build chosen for a backend environment (pure selection; PyTorch's indexes are not reached here)."""

import subprocess

import pytest

from AISegmentationLib.Backends.Environments.TorchSelection import nvidiaDriverVersion, selectTorch


def test_windows_with_nvidia_gets_cuda_from_pytorch_index():
    choice = selectTorch("Windows", "AMD64", "572.16")
    assert choice["backend"] == "cu128" and choice["uvArguments"] == ["--torch-backend", "cu128"]
    assert choice["pipArguments"] == ["--extra-index-url", "https://download.pytorch.org/whl/cu128"]
    assert selectTorch("Windows", "AMD64", "570.60")["backend"] == "cu126"  # Windows needs 570.65 for CUDA 12.8
    assert selectTorch("Windows", "AMD64", None)["backend"] is None  # no NVIDIA GPU: PyPI's CPU build


def test_linux_with_nvidia_gets_the_newest_cuda_its_driver_runs():
    assert selectTorch("Linux", "x86_64", "580.95.05")["backend"] == "cu130"
    assert selectTorch("Linux", "x86_64", "570.26")["backend"] == "cu128"
    assert selectTorch("Linux", "aarch64", "550.54.15")["backend"] == "cu124"
    assert selectTorch("Linux", "x86_64", "535.104.05")["backend"] == "cu118"
    old = selectTorch("Linux", "x86_64", "470.82")
    assert old["backend"] is None and "too old" in old["reason"]


def test_linux_without_gpu_keeps_the_configured_index():
    choice = selectTorch("Linux", "x86_64", None)
    assert choice == {"backend": None, "indexUrl": None, "uvArguments": [], "pipArguments": [],
                      "reason": choice["reason"]} and "CPU" in choice["reason"]


def test_macos_gets_pypi_with_mps():
    choice = selectTorch("Darwin", "arm64", None)
    assert choice["backend"] is None and choice["uvArguments"] == [] and "MPS" in choice["reason"]


def test_override():
    assert selectTorch("Linux", "x86_64", "570.26", "pypi")["backend"] is None
    assert selectTorch("Linux", "x86_64", None, "cpu")["uvArguments"] == ["--torch-backend", "cpu"]
    assert selectTorch("Windows", "AMD64", None, " CU126 ")["backend"] == "cu126"
    with pytest.raises(ValueError, match="Unknown torch backend 'rocm'"):
        selectTorch("Linux", "x86_64", None, "rocm")
    with pytest.raises(ValueError, match="NVIDIA driver version"):
        selectTorch("Linux", "x86_64", "unknown")


def test_driver_version_from_nvidia_smi(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi")

    def runner(stdout, code=0):
        return lambda *args, **kwargs: subprocess.CompletedProcess(args, code, stdout=stdout, stderr="")

    assert nvidiaDriverVersion(runner("570.86.15\n570.86.15\n")) == "570.86.15"  # one line per GPU
    assert nvidiaDriverVersion(runner("NVIDIA-SMI has failed", 9)) is None
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert nvidiaDriverVersion(runner("570.86.15")) is None
