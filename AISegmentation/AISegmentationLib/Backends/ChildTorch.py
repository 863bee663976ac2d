"""Torch devices inside a backend's child process (shared by the backends' child sides; imports torch lazily).

Runs in the backend's environment: only the standard library and torch, never slicer (see ChildWorker).
"""

from ChildProtocol import UserError


def availableDevices():
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.insert(0, "mps")
    return devices


def deviceName(name):
    """"cpu", "cuda" or "mps" for "auto" (best available) or a requested device; a clear error when it is absent."""
    available = availableDevices()
    if name == "auto":
        return available[0]
    if name not in ("cpu", "cuda", "mps"):
        raise UserError(f"Unknown device '{name}'; choose auto, cpu, cuda or mps")
    if name not in available:
        raise UserError(f"Device '{name}' is not available in this environment (available: {', '.join(available)})")
    return name
