"""Checkpoints loaded as data, never as code, inside a backend's child process (imports torch lazily).

A PyTorch checkpoint is a pickle: loaded with ``torch.load(weights_only=False)``, as nnU-Net v2 loads its own, a
crafted one runs any code it names. Inside :func:`weightsOnlyCheckpoints` every ``torch.load`` is
``weights_only=True`` with an allow-list of what real nnU-Net v2 checkpoints hold besides tensors and plain
containers: numpy scalars and their dtypes (the training log and the best EMA Dice), listed by
``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints trained by nnunetv2 2.8 (our tiny models, and
the same layout TotalSegmentator uses). Anything else is refused with a clear error, before it can run.

Runs in the backend's environment: only the standard library and torch, never slicer (see ChildWorker).
"""

import contextlib
import re

from ChildProtocol import UserError


def checkpointGlobals():
    """The allow-list: numpy scalars and dtypes, under numpy 2's names and numpy 1's (older checkpoints)."""
    import numpy

    scalar = numpy._core.multiarray.scalar if hasattr(numpy, "_core") else numpy.core.multiarray.scalar
    allowed = [numpy.dtype, (scalar, "numpy._core.multiarray.scalar"), (scalar, "numpy.core.multiarray.scalar")]
    allowed += [type(numpy.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")]
    return allowed


@contextlib.contextmanager
def weightsOnlyCheckpoints():
    """Within the block, torch.load loads weights only (see the module docstring); a checkpoint that names other
    code is a UserError naming the file and what it wanted to import."""
    import pickle

    import torch

    original = torch.load

    def load(source, *args, **kwargs):
        kwargs["weights_only"] = True
        try:
            with torch.serialization.safe_globals(checkpointGlobals()):
                return original(source, *args, **kwargs)
        except pickle.UnpicklingError as error:
            found = re.search(r"GLOBAL ([\w.]+)", str(error))  # "unsupported GLOBAL posix.system whose module..."
            if not found:  # e.g. "Unsupported operand 110": not a pickle of weights at all
                reason = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
                raise UserError(f"Could not load the checkpoint '{source}': it is damaged or not a PyTorch "
                                f"checkpoint ({reason.group(1).strip() if reason else 'unreadable'})") from None
            raise UserError(f"Refused to load the checkpoint '{source}': it holds more than model weights (it names "
                            f"'{found.group(1)}'). A checkpoint is a pickle that could run code; only weights, plain "
                            "values and numpy scalars are loaded. Use only model folders you trust") from None

    torch.load = load
    try:
        yield
    finally:
        torch.load = original
