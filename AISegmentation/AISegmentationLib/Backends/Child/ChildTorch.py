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
    """"cpu", "cuda", "cuda:N" or "mps" for "auto" (best available) or a requested device; a clear error when it is
    absent (also a GPU index beyond this machine's GPUs)."""
    available = availableDevices()
    if name == "auto":
        return available[0]
    kind, _, index = str(name).partition(":")
    if kind == "cuda" and index.isdigit() and "cuda" in available:
        import torch

        count = torch.cuda.device_count()
        if int(index) >= count:
            raise UserError(f"Device '{name}' is not available: this machine has {count} GPU(s), cuda:0 to "
                            f"cuda:{count - 1}")
        return f"cuda:{int(index)}"
    if kind not in ("cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise UserError(f"Unknown device '{name}'; choose auto, cpu, cuda, cuda:N or mps")
    name = kind
    if name not in available:
        raise UserError(f"Device '{name}' is not available in this environment (available: {', '.join(available)})")
    return name
