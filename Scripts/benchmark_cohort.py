"""Benchmark of cohort runs: the same cohort run one case after another in one process vs on Dask with 2 workers.

    .venv/bin/python Scripts/benchmark_cohort.py [--cases 8] [--workers 2] [--output DIR]

The cohort: N synthetic phantom cases (DevTools/SyntheticCohort.py) segmented by the tiny nnU-Net phantom model on
the CPU (no mirroring), compared with their references and measured (steps segment, compare, volumes). Sequential:
CohortRunner.runCasesInProcess (CaseTask.runCase per case, one Logic, no Dask). Dask: CohortRunner.runCohort on a
LocalCluster (worker processes, one thread each); the cluster's start is timed apart. Overhead of Dask per case on
a no-op step: (a) a task that does nothing, submitted and gathered as the runner does (key, resources,
pure=False, as_completed); (b) the volumes step on a given prediction (no backend: loading, writing the outputs and
the record), in process vs on Dask. Prints one table. Environments and tiny models come from
$AISEGMENTATION_ENVIRONMENTS_DIR and $AISEGMENTATION_TINY_MODELS_DIR (default: output/test-cache/, as the tests).
"""

import argparse
import logging
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "AISegmentation"))
sys.path.insert(0, ROOT)


def _noOp(index):
    return index


def _timeNoOpTasks(client, count):
    from distributed import as_completed

    from AISegmentationLib.Cluster.ClusterConnection import resourcesFor

    start = time.perf_counter()
    futures = [client.submit(_noOp, index, key=f"noop-{index}-{time.time_ns()}", resources=resourcesFor("cpu"),
                             pure=False) for index in range(count)]
    for _ in as_completed(futures, loop=client.loop):
        pass
    return (time.perf_counter() - start) / count


def _predictionCases(cases, records, outputDir):
    """The cases again, each with its own earlier label map as a prediction (steps without a backend)."""
    byCase = {record["case"]: record for record in records}
    return [dict(case, case=f"{case['case']}_given", prediction=os.path.join(outputDir, byCase[case["case"]]
                                                                            ["outputs"]["labelmap"]))
            for case in cases]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=8, help="phantom cases in the cohort (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default 2)")
    parser.add_argument("--noop-tasks", type=int, default=200, help="no-op tasks timed on Dask (default 200)")
    parser.add_argument("--output", help="folder for the cohorts (default: a temporary folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("distributed").setLevel(logging.ERROR)

    from DevTools import TinyModels
    from DevTools.SyntheticCohort import phantomModelOptions, writeManifest, writePhantomCohort

    from AISegmentationLib.Cluster import ClusterConnection
    from AISegmentationLib.Cohort import CohortRunner
    from AISegmentationLib.Manifest import readManifest
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import getRuntime

    models = TinyModels.buildTinyModels(TinyModels.ensureEnvironment("nnunet")["python"])
    options = phantomModelOptions(models)
    folder = args.output or tempfile.mkdtemp(prefix="benchmark-cohort-")
    logic = AISegmentationLogic(getRuntime())
    cases = readManifest(writeManifest(os.path.join(folder, "cohort.csv"),
                                       writePhantomCohort(logic, folder, args.cases)))
    steps = ("segment", "compare", "volumes")

    start = time.perf_counter()
    sequential = CohortRunner.runCasesInProcess(cases, os.path.join(folder, "sequential"), steps, "nnunet", options,
                                                logic=logic)
    sequentialSeconds = time.perf_counter() - start
    given = _predictionCases(cases, sequential, os.path.join(folder, "sequential"))
    start = time.perf_counter()
    CohortRunner.runCasesInProcess(given, os.path.join(folder, "sequential-volumes"), ("volumes",), logic=logic)
    sequentialVolumes = (time.perf_counter() - start) / len(given)

    start = time.perf_counter()
    cluster, client = ClusterConnection.openLocalCluster(workers=args.workers)
    clusterSeconds = time.perf_counter() - start
    try:
        start = time.perf_counter()
        dask = CohortRunner.runCohort(client, cases, os.path.join(folder, "dask"), steps, "nnunet", options,
                                      force=True, writeCohortOutputs=False)
        daskSeconds = time.perf_counter() - start
        noOp = _timeNoOpTasks(client, args.noop_tasks)
        start = time.perf_counter()
        CohortRunner.runCohort(client, given, os.path.join(folder, "dask-volumes"), ("volumes",), force=True,
                               writeCohortOutputs=False)
        daskVolumes = (time.perf_counter() - start) / len(given)
    finally:
        client.close()
        cluster.close()

    failed = [r["case"] for r in sequential + dask.records if r.get("status") != "done"]
    if failed:
        raise SystemExit(f"cases failed: {failed}")
    n = len(cases)
    print(f"\nCohort of {n} phantom cases, tiny nnU-Net on the CPU, steps {', '.join(steps)}; "
          f"{os.cpu_count()} cores")
    print(f"{'':<44}{'one process':>14}{f'Dask, {args.workers} workers':>18}")
    print(f"{'wall time for the cohort (s)':<44}{sequentialSeconds:>14.1f}{daskSeconds:>18.1f}")
    print(f"{'cases per minute':<44}{n / sequentialSeconds * 60:>14.1f}{n / daskSeconds * 60:>18.1f}")
    startLabel = f"  counting the cluster's start ({clusterSeconds:.1f} s)"
    print(f"{startLabel:<44}{'':>14}{n / (daskSeconds + clusterSeconds) * 60:>18.1f}")
    print(f"{'volumes step on a prediction, s per case':<44}{sequentialVolumes:>14.3f}{daskVolumes:>18.3f}")
    print(f"Dask overhead per case on a no-op task: {noOp * 1000:.1f} ms "
          f"({args.noop_tasks} tasks submitted and gathered as the runner does)")
    print(f"Outputs under {folder}")


if __name__ == "__main__":
    main()
