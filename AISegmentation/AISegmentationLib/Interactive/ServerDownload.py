"""Child side of the official nnInteractive model download: runs in the server environment, never in Slicer.

    python ServerDownload.py --model-id nnInteractive_v1.0 --root MODELS_ROOT

Lists the model's files on Hugging Face with their sizes and SHA256 (the hub's LFS metadata), reports the total,
downloads each file with progress (JSON lines, Backends/Child/ChildProtocol.py), checks sizes and checksums, and only then
moves the complete folder to ``MODELS_ROOT/<model id>``. Cancel (the parent ends this process) leaves no model.
"""

import argparse
import hashlib
import os
import shutil
import sys
import tempfile

LIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # ProcessTree.py: standard library only
BACKENDS_DIR = os.path.join(LIB_DIR, "Backends", "Child")
REPO_ID = "MIC-DKFZ/nnInteractive"


def sha256(path):
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def download(modelId, root, channel):
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    files = [entry for entry in api.list_repo_tree(REPO_ID, path_in_repo=modelId, recursive=True)
             if getattr(entry, "size", None) is not None]
    if not files:
        raise ValueError(f"Hugging Face's {REPO_ID} has no model '{modelId}'")
    total = sum(entry.size for entry in files)
    channel.log(f"{len(files)} files, {total / 1e6:.0f} MB in total")
    staging = tempfile.mkdtemp(prefix=f".{modelId}-", dir=root)
    try:
        done = 0
        for entry in files:
            channel.progress(100.0 * done / total, f"Downloading {entry.path} ({entry.size / 1e6:.0f} MB)")
            path = hf_hub_download(REPO_ID, entry.path, local_dir=staging)
            if os.path.getsize(path) != entry.size:
                raise RuntimeError(f"{entry.path}: {os.path.getsize(path)} bytes instead of {entry.size}")
            expected = getattr(getattr(entry, "lfs", None), "sha256", None)
            if expected and sha256(path) != expected:
                raise RuntimeError(f"{entry.path}: its SHA256 is not the one Hugging Face lists; nothing kept")
            done += entry.size
        target = os.path.join(root, modelId)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(os.path.join(staging, modelId), target)
        return target, total
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model-id", required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, BACKENDS_DIR)
    sys.path.append(LIB_DIR)
    from ChildProtocol import Channel
    from ProcessTree import endWithStarter

    endWithStarter()
    channel = Channel()
    try:
        folder, total = download(args.model_id, args.root, channel)
    except ValueError as error:
        channel.error("ValueError", str(error))
        return 2
    except Exception as error:  # noqa: BLE001 - reported to the parent as the job's error
        channel.error("RuntimeError", f"{type(error).__name__}: {error}")
        return 1
    channel.result(folder=folder, bytes=total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
