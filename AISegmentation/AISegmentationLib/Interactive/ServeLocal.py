"""Child side of the managed nnInteractive server: runs inside the server's isolated environment, never in Slicer.

    python ServeLocal.py --model-dir DIR --fold 0 --device auto|cpu|cuda|cuda:N|mps --port P --info-file FILE

Chooses the device (``auto``: CUDA, then Apple's MPS, else the CPU), writes what it chose to the info file (JSON:
device, description, versions), and runs nnInteractive's own server (``nninteractive-server``) on 127.0.0.1. The API
key comes from ``NN_INTERACTIVE_API_KEY`` in its environment, never from the command line. The whole process tree
ends when the process that started it ends (AISEGMENTATION_PARENT_PID, Backends/ProcessTree.endWithStarter).
Standard library only until the server's packages are imported.
"""

import argparse
import json
import logging
import os
import sys

LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # ProcessTree.py: standard library only
CPU_NOTE = ("the CPU (no GPU found: each prompt takes seconds on a real CT where a GPU answers in well under a "
            "second; fine for trying nnInteractive, slow for daily work)")


def chooseDevice(requested, torch):
    """(torch device string, description) for requested = auto | cpu | cuda | cuda:N | mps; SystemExit otherwise."""
    cuda = torch.cuda.is_available()
    mps = getattr(getattr(torch.backends, "mps", None), "is_available", lambda: False)()
    if requested == "auto":
        requested = "cuda" if cuda else "mps" if mps else "cpu"
        if requested == "cpu":
            return "cpu", CPU_NOTE
    if requested.startswith("cuda"):
        if not cuda:
            raise SystemExit(f"Device '{requested}' asked for, but this PyTorch ({torch.__version__}) sees no CUDA GPU")
        index = int(requested.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise SystemExit(f"Device '{requested}' asked for, but this machine has {torch.cuda.device_count()} "
                             f"CUDA GPU(s) (cuda:0 ... cuda:{torch.cuda.device_count() - 1})")
        return f"cuda:{index}", f"CUDA GPU {index}: {torch.cuda.get_device_name(index)}"
    if requested == "mps":
        if not mps:
            raise SystemExit("Device 'mps' asked for, but this PyTorch sees no Apple GPU (MPS)")
        return "mps", "Apple GPU (MPS)"
    return "cpu", "the CPU (chosen)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--fold", default="0")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--info-file", required=True)
    parser.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--torch-compile", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.append(LIB_DIR)
    from ProcessTree import endWithStarter

    endWithStarter()
    import importlib.metadata

    import torch

    device, description = chooseDevice(args.device, torch)
    info = {"device": device, "description": description, "torch": torch.__version__,
            "nnInteractive": importlib.metadata.version("nnInteractive"), "pid": os.getpid()}
    with open(args.info_file + ".part", "w", encoding="utf-8") as file:
        json.dump(info, file)
    os.replace(args.info_file + ".part", args.info_file)
    logging.info("nnInteractive server device: %s (%s)", device, description)
    from nnInteractive.inference.server.main import main as serverMain

    command = ["--model-dir", args.model_dir, "--fold", args.fold, "--device", device, "--host", "127.0.0.1",
               "--port", str(args.port), "--torch-n-threads", str(args.threads)]
    if not (args.torch_compile and device.startswith("cuda")):
        command.append("--no-torch-compile")
    return serverMain(command)


if __name__ == "__main__":
    sys.exit(main())
