"""Pre-flight memory estimate of a training run, from the plan: patch size x batch size x the network's features.

Training keeps, for every sample of a batch, the activations of the whole encoder-decoder for the backward pass and
their gradients (the backends' inference estimate, Backends/Jobs/MemoryEstimate.py, counts one patch forward): on a GPU
nnU-Net trains in mixed precision (half the bytes) beside the CUDA context, the weights and the optimizer; on the
CPU in float32. A run estimated above the memory it has is a warning (the job's messages, the log, the CLI); a run
that needs more than twice the device's whole memory surely cannot fit and is refused before anything starts.
"""

import logging
import os

from ..Backends.Jobs.MemoryEstimate import (BASELINE_BYTES, DEFAULT_FEATURES, GIB, MemoryEstimate, activationBytes,
                                      availableMemoryBytes)

GPU_OVERHEAD_BYTES = GIB  # CUDA context, weights, optimizer state, cuDNN workspace
SURELY_TOO_LARGE = 2.0  # needed / the device's whole memory beyond which the run is refused
SUGGESTIONS = "a smaller patch or batch (plan preset 'tiny', or planOverrides), another configuration, or a GPU"


def physicalMemoryBytes():
    """This computer's whole memory (bytes), or None."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def estimateTrainingMemory(configuration, numChannels, device="cpu", parallelFolds=1, availableBytes="system",
                           totalBytes="system"):
    """:class:`MemoryEstimate` of training one configuration of the plan (TrainingLogic.trainingPlan's entry:
    patchSize, batchSize, features) on device "cpu", "cuda" or "mps"; parallelFolds: folds trained at once on this
    computer (a local cluster). availableBytes / totalBytes: the memory the run has and the device's whole memory
    (default: this computer's RAM, or the GPU's for "cuda"; None: unknown, no check). ValueError when the run needs
    more than twice the device's whole memory."""
    patch, batch = configuration["patchSize"], int(configuration["batchSize"])
    perSample = 2 * activationBytes(patch, configuration.get("features") or DEFAULT_FEATURES,
                                     numChannels)  # activations kept for the backward pass + their gradients
    onGpu = device in ("cuda", "mps")
    if onGpu:
        gpu = batch * perSample // 2 + GPU_OVERHEAD_BYTES  # one fold per GPU
        peak = BASELINE_BYTES * parallelFolds
    else:
        gpu = None
        peak = parallelFolds * (BASELINE_BYTES + batch * perSample)
    needed, where = (gpu, "GPU memory") if onGpu else (peak, "memory")
    if availableBytes == "system":
        availableBytes = _gpuMemory() if device == "cuda" else (None if onGpu else availableMemoryBytes())
    if totalBytes == "system":
        totalBytes = _gpuMemory() if device == "cuda" else (None if onGpu else physicalMemoryBytes())
    estimate = MemoryEstimate(int(peak), None if gpu is None else int(gpu), availableBytes, tuple(patch))
    folds = f" ({parallelFolds} folds at once)" if parallelFolds > 1 else ""
    text = (f"Training needs about {needed / GIB:.1f} GiB of {where}{folds} (patch {list(patch)}, batch {batch}, "
            f"features {configuration.get('features')})")
    if totalBytes and needed > SURELY_TOO_LARGE * totalBytes:
        owner = "the GPU" if onGpu else "this computer"
        raise ValueError(f"{text}: more than twice the {totalBytes / GIB:.1f} GiB {owner} has, it cannot fit; nothing "
                         f"was started. Use {SUGGESTIONS}.")
    if availableBytes and needed > 0.9 * availableBytes:
        estimate.messages.append(f"{text}, more than the {availableBytes / GIB:.1f} GiB available: the run may fail "
                                 f"or be killed. Suggestions: {SUGGESTIONS}.")
    for message in estimate.messages:
        logging.warning("%s", message)
    return estimate


def _gpuMemory():
    from ..Backends.Environments.TorchSelection import nvidiaGpuMemoryBytes

    return nvidiaGpuMemoryBytes()
