"""Which PyTorch build a backend environment gets: CUDA on NVIDIA machines, MPS on macOS, CPU elsewhere.

:func:`selectTorch` is a pure function of (platform, machine, NVIDIA driver version or None, override):

- Windows or Linux with an NVIDIA driver: the CUDA build from PyTorch's own index (``https://download.pytorch.org/
  whl/cuXYZ``), the newest CUDA that the driver supports (:data:`CUDA_BY_DRIVER`). PyPI's Windows torch is
  CPU-only (the classic reason AI "crawls on CPU" in Slicer), so the PyTorch index is needed there.
- macOS: PyPI's torch (its arm64 build has MPS); no PyTorch index.
- Anything else (no NVIDIA driver): the sources the base Python's pip is configured with (PyPI by default; a local
  wheel folder or a hospital mirror where pip is configured so). PyTorch's CPU index is deliberately NOT used: on
  networks that let only the package index through it is unreachable, while PyPI's torch runs on a CPU too.

``$AISEGMENTATION_TORCH_BACKEND`` overrides the choice: ``auto`` (the rule above), ``pypi`` (never PyTorch's
index, e.g. when it is unreachable), ``cpu`` (PyTorch's CPU index) or ``cuXYZ`` (e.g. ``cu126``).
The result carries uv's flags (``--torch-backend``) and pip's equivalent (``--extra-index-url``).
"""

import os
import re
import shutil
import subprocess

from ...ProcessTree import hiddenWindow

TORCH_BACKEND_VARIABLE = "AISEGMENTATION_TORCH_BACKEND"
PYTORCH_INDEX = "https://download.pytorch.org/whl/{backend}"
# (CUDA build, minimum Linux driver, minimum Windows driver), newest first: NVIDIA's CUDA toolkit release notes.
CUDA_BY_DRIVER = (
    ("cu130", (580, 65), (580, 88)),
    ("cu128", (570, 26), (570, 65)),
    ("cu126", (560, 28), (560, 76)),
    ("cu124", (550, 54), (551, 61)),
    ("cu118", (520, 61), (520, 6)),
)
CUDA_PATTERN = re.compile(r"^cu\d{3}$")


def _driverTuple(version):
    parts = re.findall(r"\d+", str(version))
    if not parts:
        raise ValueError(f"Cannot read the NVIDIA driver version '{version}' (expected e.g. '570.86.15')")
    return tuple(int(part) for part in parts[:2])


def selectTorch(system, machine, driverVersion=None, override="auto"):
    """{"backend", "indexUrl", "uvArguments", "pipArguments", "reason"} for a platform.

    system: platform.system() ("Windows", "Linux", "Darwin"); machine: platform.machine(); driverVersion: the
    NVIDIA driver version ("570.86.15") or None; override: see the module docstring. backend is None when the
    configured/PyPI sources are kept.
    """
    override = (override or "auto").strip().lower()
    if override not in ("auto", "pypi", "cpu") and not CUDA_PATTERN.match(override):
        raise ValueError(f"Unknown torch backend '{override}' (from ${TORCH_BACKEND_VARIABLE}); choose auto, pypi, "
                         f"cpu or a CUDA build such as cu128")
    if override == "pypi":
        return _choice(None, "the configured package index (override)")
    if override != "auto":
        return _choice(override, f"{override} (override)")
    if system == "Darwin":
        return _choice(None, f"PyPI's macOS build (MPS on Apple silicon; {machine})")
    if system in ("Windows", "Linux") and driverVersion:
        driver = _driverTuple(driverVersion)
        for backend, linuxMinimum, windowsMinimum in CUDA_BY_DRIVER:
            if driver >= (windowsMinimum if system == "Windows" else linuxMinimum):
                return _choice(backend, f"CUDA build {backend} for NVIDIA driver {driverVersion}")
        return _choice(None, f"the NVIDIA driver {driverVersion} is too old for PyTorch's CUDA builds: CPU build")
    return _choice(None, "no NVIDIA driver: the configured package index (CPU build)")


def _choice(backend, reason):
    indexUrl = PYTORCH_INDEX.format(backend=backend) if backend else None
    return {"backend": backend, "indexUrl": indexUrl, "reason": reason,
            "uvArguments": ["--torch-backend", backend] if backend else [],
            "pipArguments": ["--extra-index-url", indexUrl] if backend else []}


def _nvidiaSmiLines(query, runner):
    """nvidia-smi's answer to --query-gpu=QUERY (one line per GPU), or [] (no nvidia-smi, no GPU, or it failed)."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return []
    try:
        result = runner([executable, f"--query-gpu={query}", "--format=csv,noheader,nounits"], capture_output=True,
                        text=True, timeout=20, check=False, **hiddenWindow())
    except (OSError, subprocess.SubprocessError):
        return []
    lines = [line.strip() for line in (result.stdout or "").splitlines() if line.strip()]
    return lines if result.returncode == 0 else []


def nvidiaDriverVersion(runner=subprocess.run):
    """The NVIDIA driver version reported by nvidia-smi, or None (no nvidia-smi, no GPU, or it failed)."""
    lines = _nvidiaSmiLines("driver_version", runner)
    return lines[0] if lines and re.match(r"^\d+\.\d+", lines[0]) else None


def nvidiaGpuMemoryBytes(runner=subprocess.run):
    """The total memory of the first NVIDIA GPU (bytes) reported by nvidia-smi, or None."""
    lines = _nvidiaSmiLines("memory.total", runner)
    return int(lines[0]) * 1024 ** 2 if lines and lines[0].isdigit() else None


def torchForThisMachine():
    """selectTorch for this machine and $AISEGMENTATION_TORCH_BACKEND."""
    import platform

    override = os.environ.get(TORCH_BACKEND_VARIABLE, "auto")
    driver = nvidiaDriverVersion() if platform.system() in ("Windows", "Linux") else None
    return selectTorch(platform.system(), platform.machine(), driver, override)
