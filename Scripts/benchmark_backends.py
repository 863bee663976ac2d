"""Benchmark of the AI backends on the CPU: our Logic (child process, NIfTI round trip, import into a segmentation
through the segment editor logic) against calling the backends' own command lines on the same input.

    .venv/bin/python Scripts/benchmark_backends.py [--repeats 3] [--install-environment]

nnU-Net: the tiny phantom model (DevTools/build_tiny_models.py) on a synthetic phantom volume, ours
``runNnUNet`` vs ``nnUNetv2_predict_from_modelfolder``. TotalSegmentator: the real ``example_ct_sm.nii.gz`` with the
tiny weights in TotalSegmentator's layout, ours ``runTotalSegmentator(fast=True)`` vs ``TotalSegmentator --fast``.
Both run in the same isolated environments. Prints median wall times, the overhead ratio (ours / direct - 1; target
<= 5 %), and each environment's install time and size (``--install-environment`` reinstalls them into a new
folder to time a fresh install). Environments and models come from $AISEGMENTATION_ENVIRONMENTS_DIR and
$AISEGMENTATION_TINY_MODELS_DIR (default: output/test-cache/, as the tests).
"""

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "AISegmentation"))
sys.path.insert(0, ROOT)


def _median(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _run(command, env=None):
    env = dict(env or os.environ, OMP_NUM_THREADS=os.environ["AISEGMENTATION_BACKEND_THREADS"])  # as our children
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def _environmentFigures(logic, name, reinstall):
    if reinstall:
        from AISegmentationLib.Backends.Environments.Environments import EnvironmentManager

        logic.aiEnvironments = EnvironmentManager(tempfile.mkdtemp(prefix=f"benchmark-{name}-"))
        start = time.perf_counter()
        logic.createBackendEnvironment(name)
        seconds = time.perf_counter() - start
    else:
        seconds = logic.backendEnvironmentDetails(name)["seconds"]
    size = logic.aiEnvironments.sizeBytes(logic.aiEnvironments.details(name)["name"])
    return {"installSeconds": seconds, "sizeGiB": round(size / 1024 ** 3, 2)}


def benchmarkNnUNet(logic, models, repeats, work):
    import numpy as np
    from DevTools import build_tiny_models
    from DevTools.SyntheticImages import makeVolume

    channels, _ = build_tiny_models.phantomCase(4242, shape=(48, 64, 64))
    volume = makeVolume(logic, channels[0], name="phantom")
    inputDir = os.path.join(work, "nnunet-in")
    os.makedirs(inputDir)
    logic.saveVolume(volume, os.path.join(inputDir, "case_0000.nii.gz"))
    python = logic.backendEnvironmentDetails("nnunet")["python"]
    executable = os.path.join(os.path.dirname(python), "nnUNetv2_predict_from_modelfolder")
    model = models["phantomModel"]

    def direct():
        _run([executable, "-i", inputDir, "-o", os.path.join(work, "nnunet-out"), "-m", model, "-f", "0",
              "-device", "cpu", "-npp", "1", "-nps", "1"])

    def ours():
        node = logic.runNnUNet(volume, model, folds=0, device="cpu", environment="isolated")
        logic.scene.RemoveNode(node)

    return _compare(direct, ours, repeats, {"input": f"synthetic phantom {tuple(np.shape(channels[0]))} voxels"})


def benchmarkTotalSegmentator(logic, models, repeats, work):
    from AISegmentationLib.SampleData import fetchSampleFile

    path = fetchSampleFile("example_ct_sm.nii.gz")
    volume = logic.loadVolume(path)
    logic.totalSegmentatorHome = models["totalSegmentatorHome"]
    python = logic.backendEnvironmentDetails("totalsegmentator")["python"]
    executable = os.path.join(os.path.dirname(python), "TotalSegmentator")
    env = dict(os.environ, TOTALSEG_HOME_DIR=models["totalSegmentatorHome"])

    def direct():
        _run([executable, "-i", path, "-o", os.path.join(work, "ts-out.nii.gz"), "--ml", "--fast", "-d", "cpu"], env)

    def ours():
        node = logic.runTotalSegmentator(volume, fast=True, device="cpu", environment="isolated")
        logic.scene.RemoveNode(node)

    return _compare(direct, ours, repeats, {"input": "example_ct_sm.nii.gz (122 x 101 x 30, 3 mm), task total --fast"})


def _compare(direct, ours, repeats, info):
    ours()  # warm-up: file caches, first imports
    directSeconds, directTimes = _median(direct, repeats)
    oursSeconds, oursTimes = _median(ours, repeats)
    return {**info, "directSeconds": round(directSeconds, 2), "oursSeconds": round(oursSeconds, 2),
            "overheadPercent": round(100 * (oursSeconds / directSeconds - 1), 1),
            "directTimes": [round(t, 2) for t in directTimes], "oursTimes": [round(t, 2) for t in oursTimes]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--install-environment", action="store_true", help="time a fresh environment install")
    parser.add_argument("--backends", nargs="+", default=["nnunet", "totalsegmentator"])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="compute threads per backend process, "
                        "the same for ours and the direct runs (default: all cores)")
    args = parser.parse_args(argv)
    os.environ["AISEGMENTATION_BACKEND_THREADS"] = str(args.threads)
    logging.basicConfig(level=logging.WARNING)
    from DevTools import TinyModels

    results = {}
    with tempfile.TemporaryDirectory(prefix="benchmark-backends-") as work:
        for name in args.backends:
            TinyModels.ensureEnvironment(name)
        models = TinyModels.buildTinyModels(TinyModels.ensureEnvironment("nnunet")["python"])
        from AISegmentationLib.Logic import AISegmentationLogic
        from AISegmentationLib.Runtime import createHeadlessRuntime

        logic = AISegmentationLogic(createHeadlessRuntime())
        functions = {"nnunet": benchmarkNnUNet, "totalsegmentator": benchmarkTotalSegmentator}
        for name in args.backends:
            results[name] = functions[name](logic, models, args.repeats, work)
        for name in args.backends:
            results[name]["environment"] = _environmentFigures(logic, name, args.install_environment)
    for name, result in results.items():
        print(f"{name}: ours {result['oursSeconds']:.2f} s, direct {result['directSeconds']:.2f} s, overhead "
              f"{result['overheadPercent']:+.1f} % ({result['input']}); environment install "
              f"{result['environment']['installSeconds']} s, {result['environment']['sizeGiB']} GiB")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(results, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
