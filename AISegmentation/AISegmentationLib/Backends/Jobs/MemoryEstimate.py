"""Pre-flight estimate of an AI run's peak memory from the volume size and the model configuration.

The model runs on the volume resampled to the network's spacing, patch by patch (sliding window); the class scores
of the whole resampled volume are accumulated (half precision), then brought back to the export grid as float
class probabilities. The estimate adds these arrays, the input copies, the network's activations for one patch and
a fixed baseline for Python, torch and the backend libraries. It is deliberately simple and a little
conservative: its purpose is a timely warning with a suggestion, not an exact figure.
"""

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Optional

GIB = 1024 ** 3
BASELINE_BYTES = int(1.5 * GIB)
DEFAULT_FEATURES = (32, 64, 128, 256, 320, 320)
LARGE_CPU_VOXELS = 40e6  # voxels at the network spacing beyond which a CPU run takes long


@dataclass
class MemoryEstimate:
    peakBytes: int
    gpuBytes: Optional[int]
    availableBytes: Optional[int]
    networkShape: tuple
    messages: list = field(default_factory=list)

    @property
    def fits(self):
        return self.availableBytes is None or self.peakBytes <= 0.9 * self.availableBytes

    def summary(self):
        text = f"estimated peak memory {self.peakBytes / GIB:.1f} GiB"
        if self.availableBytes is not None:
            text += f" ({self.availableBytes / GIB:.1f} GiB available)"
        if self.gpuBytes is not None:
            text += f", about {self.gpuBytes / GIB:.1f} GiB on the GPU"
        return text


def availableMemoryBytes():
    """Memory available to a new process (bytes), or None when the platform does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if sys.platform == "win32":
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                        ("available", ctypes.c_ulonglong), ("pageTotal", ctypes.c_ulonglong),
                        ("pageAvailable", ctypes.c_ulonglong), ("virtualTotal", ctypes.c_ulonglong),
                        ("virtualAvailable", ctypes.c_ulonglong), ("extended", ctypes.c_ulonglong)]

        status = _Status()
        status.length = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
            return int(status.available)
        return None
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _voxels(shape, spacing, targetSpacing):
    """Shape of a volume (shape, spacing in the same axis order) resampled to targetSpacing (2D: in-plane only)."""
    target = list(targetSpacing)
    if len(target) < len(spacing):
        target = list(spacing[: len(spacing) - len(target)]) + target
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))


def activationBytes(patchSize, featuresPerStage, numChannels):
    """Activations of one patch through an encoder-decoder (a few tensors per stage, float32, both halves)."""
    patchVoxels = math.prod(patchSize)
    scale = 2 ** len(patchSize)
    perStage = sum(features * patchVoxels / scale ** stage for stage, features in enumerate(featuresPerStage))
    return int((perStage * 6 * 2 + numChannels * patchVoxels) * 4)


def estimateMemory(shape, spacing, networkSpacing, numClasses, patchSize, numChannels=1, featuresPerStage=None,
                   exportSpacing=None, device="cpu", models=1, suggestions=(), availableBytes="system"):
    """:class:`MemoryEstimate` of one run.

    shape, spacing: the input volume (same axis order); networkSpacing: the model's spacing; exportSpacing: the grid
    the class probabilities are brought back to (default: the input's, as nnU-Net does; TotalSegmentator exports at
    its own resampling). models: models whose probabilities are kept at once (ensembles). suggestions: what the
    user can do about too much memory, appended to the warning.
    """
    features = tuple(featuresPerStage or DEFAULT_FEATURES)
    networkShape = _voxels(shape, spacing, networkSpacing)
    inputVoxels = math.prod(shape)
    networkVoxels = math.prod(networkShape)
    exportVoxels = math.prod(_voxels(shape, spacing, exportSpacing)) if exportSpacing else inputVoxels
    inputs = numChannels * (inputVoxels * 4 + networkVoxels * 4 * 2) + inputVoxels * 2
    prediction = networkVoxels * (numClasses * (2 + 4) + 2)
    export = numClasses * exportVoxels * 4 * (2 + (1 if models > 1 else 0)) + exportVoxels * 2
    activations = activationBytes(patchSize, features, numChannels)
    onGpu = device in ("cuda", "mps")
    peak = BASELINE_BYTES + inputs + max(prediction, export) + (0 if onGpu else activations)
    gpu = (activations + networkVoxels * (numClasses * 2 + 2 + numChannels * 4) + GIB // 2) if onGpu else None
    available = availableMemoryBytes() if availableBytes == "system" else availableBytes
    estimate = MemoryEstimate(int(peak), gpu, available, networkShape)
    advice = f" Suggestions: {'; '.join(suggestions)}." if suggestions else ""
    if available is not None and peak > 0.9 * available:
        estimate.messages.append(f"Estimated peak memory {peak / GIB:.1f} GiB is more than the {available / GIB:.1f} "
                                 f"GiB available: the run may fail or be killed.{advice}")
    elif available is not None and peak > 0.6 * available:
        estimate.messages.append(f"Estimated peak memory {peak / GIB:.1f} GiB is close to the {available / GIB:.1f} "
                                 f"GiB available.{advice}")
    if not onGpu and networkVoxels > LARGE_CPU_VOXELS:
        estimate.messages.append(f"{networkVoxels / 1e6:.0f} million voxels at the model's spacing is a long run on "
                                 f"the CPU.{advice}")
    if gpu is not None and gpu > 7 * GIB:
        estimate.messages.append(f"The run needs about {gpu / GIB:.1f} GiB of GPU memory; with less, use the CPU or "
                                 f"a smaller volume.")
    return estimate
