#!/usr/bin/env python3
"""Per-prompt client-side cost and image upload time of the nnInteractive client on a 512 x 512 x 300 volume.

Runs the real Logic path (prompt geometry, requests, reply decoding, writing through the segment editor logic)
against a real server of each generation on 127.0.0.1 with the tiny model (started here, or --url for one that runs).
Client-side cost = wall time of the Logic call minus the time the client spent blocked reading the socket, that is
waiting for the server to compute and send its reply. Also times the write of a 192^3 changed box (the real
nnInteractive model's patch size) on its own, since the tiny model's changed boxes are smaller.

    .venv/bin/python Scripts/benchmark_interactive.py [--generation current legacy] [--repeats 5] [--url URL]
    .venv/bin/python Scripts/benchmark_interactive.py --managed     # the local server as AISegmentation starts it
                                                                    # beside nninteractive-server started by hand

--managed times the start (process start to ready: health, key and version checked for the managed one) and the
prompts of the current server started by AISegmentation (logic.startInteractiveServer, device auto) and of the same
server started by hand (DevTools/start_nninteractive_server.py serve: nninteractive-server --device cpu
--no-torch-compile), one after the other on this machine.
"""

import argparse
import contextlib
import json
import logging
import os
import socket
import statistics
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "AISegmentation"))
SHAPE = (300, 512, 512)  # KJI


class SocketWait:
    """Accumulates the time spent inside socket reads (blocked waiting for the server)."""

    def __init__(self):
        self.seconds = 0.0
        self._originals = {}

    def __enter__(self):
        for name in ("recv", "recv_into"):
            original = getattr(socket.socket, name)
            self._originals[name] = original

            def timed(sock, *args, _original=original, **kwargs):
                started = time.perf_counter()
                try:
                    return _original(sock, *args, **kwargs)
                finally:
                    self.seconds += time.perf_counter() - started

            setattr(socket.socket, name, timed)
        return self

    def __exit__(self, *exc):
        for name, original in self._originals.items():
            setattr(socket.socket, name, original)


def makeScene(logic):
    import slicer

    volume = logic.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "benchmark")
    volume.SetSpacing(0.8, 0.8, 1.5)
    rng = np.random.default_rng(0)
    image = rng.normal(0, 5, SHAPE).astype(np.int16) + 10
    radius = 9
    grid = np.ogrid[tuple(slice(-radius, radius + 1) for _ in range(3))]
    ball = sum(g.astype(float) ** 2 for g in grid) <= radius ** 2
    for center, value in (((150, 256, 170), 100), ((150, 256, 340), 160)):
        region = tuple(slice(c - radius, c + radius + 1) for c in center)
        image[region] += (ball * value).astype(np.int16)
    slicer.util.updateVolumeFromArray(volume, image)
    segmentation = logic.createSegmentation(volume, "benchmark")
    return volume, segmentation, logic.addSegment(segmentation, "target")


def rasOf(volume, kji):
    from AISegmentationLib.Geometry import ijkToRas

    return ijkToRas(volume, np.asarray(kji, float)[::-1])[0]


def timed(function):
    with SocketWait() as wait:
        started = time.perf_counter()
        result = function()
        wall = time.perf_counter() - started
    return wall, wait.seconds, result


def benchmarkServer(url, repeats, apiKey=None):
    from AISegmentationLib.Interactive.Consent import ConsentStore
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import createHeadlessRuntime

    logic = AISegmentationLogic(createHeadlessRuntime())
    logic.setInteractiveConsentStore(ConsentStore(None))
    volume, segmentation, target = makeScene(logic)
    logic.setInteractiveServer(url, apiKey, readTimeout=300)
    info = logic.interactiveSession.connect()
    logic.startInteractiveSegmentation(volume, segmentation, target)
    upload = timed(logic.interactiveSession.ensureImage)
    logic.interactiveSession.ensureSegmentSynced()
    scribble = np.zeros(SHAPE, np.uint8)
    scribble[150, 256:258, 165:176] = 1
    prompts = {
        "point": lambda: logic.interactivePoint(rasOf(volume, (150, 256, 170))),
        "box": lambda: logic.interactiveBox([rasOf(volume, (150, 244, 330)), rasOf(volume, (150, 268, 352))]),
        "scribble": lambda: logic.interactiveScribble(scribble),
        "lasso": lambda: logic.interactiveLasso(
            [rasOf(volume, (150, 256 + 12 * np.sin(a), 340 + 12 * np.cos(a))) for a in np.linspace(0, 6.2, 16)]),
    }
    rows = {"protocol": info.protocol, "uploadSeconds": round(upload[0], 3)}
    logic.interactivePoint(rasOf(volume, (150, 256, 170)))  # the first prompt after the upload (server warm-up)
    measured = {name: [] for name in prompts}
    for _ in range(repeats):  # prompts one after the other, as a user places them
        for name, prompt in prompts.items():
            wall, waiting, result = timed(prompt)
            measured[name].append((wall, wall - waiting, [hi - lo for lo, hi in result.box]))
    for name, values in measured.items():
        rows[name] = {"wallMedian": round(statistics.median(v[0] for v in values), 4),
                      "clientSideMedian": round(statistics.median(v[1] for v in values), 4),
                      "clientSideMax": round(max(v[1] for v in values), 4), "changedBox": values[-1][2]}
    wall, waiting, _ = timed(lambda: (logic.interactiveReset(), prompts["point"]()))
    rows["resetThenPoint"] = {"wall": round(wall, 4), "clientSide": round(wall - waiting, 4)}
    logic.closeInteractiveSession()
    return rows


def benchmarkWrite(repeats, size=192):
    """Writing a size^3 changed box into a segment of the 512 x 512 x 300 volume (remove + add, one undo state)."""
    from AISegmentationLib.Interactive import ResultWriter
    from AISegmentationLib.Interactive.Region import ChangedRegion
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import createHeadlessRuntime

    logic = AISegmentationLogic(createHeadlessRuntime())
    volume, segmentation, target = makeScene(logic)
    box = ((54, 54 + size), (160, 160 + size), (74, 74 + size))
    grid = np.ogrid[tuple(slice(0, size) for _ in range(3))]
    mask = (sum((g - size / 2) ** 2 for g in grid) <= (size / 3) ** 2).astype(np.uint8)
    seconds = []
    for repeat in range(repeats):
        region = ChangedRegion(box, mask if repeat % 2 == 0 else 1 - mask)
        started = time.perf_counter()
        ResultWriter.writeRegion(logic.segmentEditor, segmentation, target, volume, region)
        seconds.append(time.perf_counter() - started)
    return {"box": size, "writeMedian": round(statistics.median(seconds), 4)}


@contextlib.contextmanager
def startedServer(generation):
    sys.path.insert(0, REPO)
    from DevTools.InteractiveServers import ServerProcess, tinyModel

    server = ServerProcess(generation, tinyModel())
    try:
        yield server.url
    finally:
        server.stop()


def startByHand(modelDir):
    """nninteractive-server as a user starts it in a terminal; (url, seconds to /healthz, stop)."""
    import subprocess

    import requests

    from DevTools.InteractiveServers import LAUNCHER, environment, freePort

    port = freePort()
    started = time.perf_counter()
    process = subprocess.Popen([environment("current"), LAUNCHER, "serve", "--generation", "current", "--model-dir",
                                modelDir, "--port", str(port)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nninteractive-server ended with {process.returncode}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except requests.exceptions.RequestException:
            time.sleep(0.25)
    seconds = time.perf_counter() - started

    def stop():
        import signal

        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)

    return url, seconds, stop


def compareManaged(repeats):
    """Start time and prompts: the managed local server beside the same server started by hand."""
    sys.path.insert(0, REPO)
    from DevTools.InteractiveServers import environment, tinyModel
    from AISegmentationLib.Interactive.ManagedServer import ManagedServer

    modelDir, results = tinyModel(), {}
    url, seconds, stop = startByHand(modelDir)
    try:
        results["byHand"] = {"startSeconds": round(seconds, 2), **benchmarkServer(url, repeats)}
    finally:
        stop()
    started = time.perf_counter()
    server = ManagedServer(environment("current"), modelDir).start()
    try:
        results["managed"] = {"startSeconds": round(time.perf_counter() - started, 2),
                              "device": server.info.get("device"),
                              **benchmarkServer(server.url, repeats, server.apiKey)}
    finally:
        server.stop()
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generation", nargs="+", default=["current", "legacy"], choices=["current", "legacy"])
    parser.add_argument("--url", default=None, help="use this running server instead of starting one")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    parser.add_argument("--managed", action="store_true",
                        help="compare the managed local server with nninteractive-server started by hand")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = {"volume": list(SHAPE), "cpuCount": os.cpu_count(), "write192": benchmarkWrite(args.repeats)}
    if args.managed:
        results.update(compareManaged(args.repeats))
    elif args.url:
        results["server"] = benchmarkServer(args.url, args.repeats)
    else:
        for generation in args.generation:
            with startedServer(generation) as url:
                results[generation] = benchmarkServer(url, args.repeats)
    print(json.dumps(results, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
