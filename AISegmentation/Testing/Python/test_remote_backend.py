"""One case on a Dask cluster by address, from the console (logic.runBackend(..., cluster=ADDRESS)): a real scheduler
and a real worker started as separate `dask` processes on 127.0.0.1 over TLS with certificates made here, running the
tiny nnU-Net model in the worker's own isolated environment. Refusals (plain TCP beyond loopback, no consent, no TLS
settings) are checked without any cluster: they happen before anything is sent."""

import os
import shutil
import time

import numpy as np
import pytest
from DevTools.DaskProcesses import daskCluster, makeTlsCertificates
from DevTools.SyntheticImages import makeVolume, sceneSnapshot
from DevTools.TinyModels import aiLogic, nnunetEnvironment, phantomVolume, segmentArrays, tinyModels  # noqa: F401

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Consent import ConsentStore
from BackendChecks import processGroupGone, requireLabelDice

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHANTOM_LABELS = {"bright_sphere": 1, "dark_sphere": 2}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tinyModels):  # noqa: F811 - the environments and models exist before the worker starts
    """A TLS scheduler and one worker (separate processes) whose environment finds AISegmentation and the cached
    backend environments, as the README tells a user to start them."""
    folder = tmp_path_factory.mktemp("dask")
    certificates = makeTlsCertificates(folder / "tls")
    (folder / "worker-tmp").mkdir()
    env = dict(os.environ, PYTHONPATH=MODULE_DIR, AISEGMENTATION_BACKEND_THREADS="1", TMPDIR=str(folder / "worker-tmp"))
    with daskCluster(folder, tls=certificates, workerEnv=env) as running:
        running.temporaryFolder = folder / "worker-tmp"
        yield running


def _workerJobFolders(cluster):
    """The job folders left in the worker's temporary folder (each run removes its own)."""
    return sorted(path.name for path in cluster.temporaryFolder.glob("AISegmentation-worker-*"))


@pytest.fixture
def remoteLogic(aiLogic):  # noqa: F811
    aiLogic.setClusterConsentStore(ConsentStore(None))
    return aiLogic


def _phantomRun(logic, model, volume, **where):
    return logic.startBackend("nnunet", volume, modelFolders=[model], device="cpu", tta=False, folds=0, **where)


@pytest.mark.slow
def test_remote_run_gives_the_local_result_with_progress_log_provenance_and_one_undo_state(remoteLogic, tinyModels,
                                                                                            cluster):  # noqa: F811
    (volume,), truth = phantomVolume(remoteLogic, seed=931)
    local = _phantomRun(remoteLogic, tinyModels["phantomModel"], volume).wait()
    localArrays = segmentArrays(remoteLogic, local, volume)
    requireLabelDice(remoteLogic, local, volume, truth, PHANTOM_LABELS)
    segmentation = remoteLogic.createSegmentation(volume, "remote")
    corner = np.zeros(truth.shape, np.uint8)
    corner[:3, :3, :3] = 1
    remoteLogic.writeLabelmapArray(segmentation, remoteLogic.addSegment(segmentation, "manual"), volume, corner)
    before = sceneSnapshot(remoteLogic, segmentation)
    progress = []
    job = _phantomRun(remoteLogic, tinyModels["phantomModel"], volume, segmentationNode=segmentation,
                      cluster=cluster.address, clusterSecurity=cluster.clientSecurity())
    assert job.wait(progressCallback=lambda percent, message: progress.append((percent, message))) is segmentation
    arrays = segmentArrays(remoteLogic, segmentation, volume)
    assert set(arrays) == {"manual", *PHANTOM_LABELS}
    for name in PHANTOM_LABELS:
        assert int(arrays[name].sum()) == int(localArrays[name].sum()) > 0, name
        assert np.array_equal(arrays[name], localArrays[name]), name
    assert segmentation.GetAttribute("AISegmentation.environment") == f"dask:{cluster.address}/isolated:nnunet"
    assert segmentation.GetAttribute("AISegmentation.backend") == "nnU-Net"
    assert segmentation.GetAttribute("AISegmentation.device") == "cpu"
    assert len({percent for percent, _ in progress}) > 2 and progress[-1][0] == 100
    assert any(message == "Predicting" for _, message in progress)
    lines = job.logLines()
    assert any(line.startswith("$ ") and "ChildWorker.py" in line for line in lines), lines[:5]
    assert job.state == "succeeded" and job.seconds > 0 and job.memoryEstimate.peakBytes > 0
    assert _workerJobFolders(cluster) == []
    remoteLogic.undo(segmentation)
    assert sceneSnapshot(remoteLogic, segmentation) == before


@pytest.mark.slow
def test_cancel_ends_the_childs_process_tree_on_the_worker_and_leaves_the_segmentation(remoteLogic, tinyModels,
                                                                                     cluster):  # noqa: F811
    (volume,), _ = phantomVolume(remoteLogic, seed=932)
    segmentation = remoteLogic.createSegmentation(volume, "keep")
    remoteLogic.addSegment(segmentation, "manual")
    big = makeVolume(remoteLogic, np.random.default_rng(5).normal(40, 25, (96, 160, 160)).astype(np.float32),
                     name="big")
    before, nodes = sceneSnapshot(remoteLogic, segmentation), remoteLogic.scene.GetNumberOfNodes()
    job = remoteLogic.startBackend("nnunet", big, modelFolders=[tinyModels["phantomModel"]], device="cpu",
                                   tta=True, stepSize=0.1, folds=0, cluster=cluster.address,
                                   clusterSecurity=cluster.clientSecurity())
    deadline = time.time() + 120
    while not (job.message == "Predicting" and job.workerPid) and not job.done and time.time() < deadline:
        time.sleep(0.05)
    assert job.workerPid and not job.done, job.logLines()[-10:]
    workDir = os.path.dirname(job.submission["inputs"][0])
    start = time.time()
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait()
    while not processGroupGone(job.workerPid) and time.time() - start < 10:
        time.sleep(0.05)
    assert processGroupGone(job.workerPid), "the backend child on the worker is still running"
    assert job.state == "cancelled" and time.time() - start < 10
    assert sceneSnapshot(remoteLogic, segmentation) == before and remoteLogic.scene.GetNumberOfNodes() == nodes
    assert not os.path.exists(workDir) and _workerJobFolders(cluster) == []


@pytest.mark.slow
def test_a_backend_failure_on_the_worker_is_a_clear_error_and_nothing_is_written(remoteLogic, tinyModels, cluster,
                                                                                  tmp_path):  # noqa: F811
    (volume,), _ = phantomVolume(remoteLogic, seed=933)
    broken = tmp_path / "Dataset990_AISegPhantom" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    shutil.copytree(tinyModels["phantomModel"], broken)
    (broken / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    nodes = remoteLogic.scene.GetNumberOfNodes()
    job = _phantomRun(remoteLogic, str(broken), volume, cluster=cluster.address,
                      clusterSecurity=cluster.clientSecurity())
    # the child's refusal of an unreadable checkpoint is a user error (ValueError) that names the file
    with pytest.raises((RuntimeError, ValueError), match="nnU-Net failed: .*damaged or not a PyTorch checkpoint"):
        job.wait()
    assert job.state == "failed" and remoteLogic.scene.GetNumberOfNodes() == nodes
    assert _workerJobFolders(cluster) == []


@pytest.mark.slow
def test_a_client_without_a_certificate_is_refused_by_the_tls_scheduler(remoteLogic, tinyModels, cluster,
                                                                         tmp_path):  # noqa: F811
    """Plain TCP to the TLS scheduler's port (allowed by our rules on loopback), TLS without a client certificate,
    and a client certificate that another CA signed: none gets in."""
    from distributed.security import Security

    (volume,), _ = phantomVolume(remoteLogic, seed=934)
    nodes = remoteLogic.scene.GetNumberOfNodes()
    plain = cluster.address.replace("tls://", "tcp://")
    stranger = makeTlsCertificates(tmp_path / "stranger")
    foreign = Security(tls_ca_file=cluster.tls.ca, tls_client_cert=stranger.clientCert,
                       tls_client_key=stranger.clientKey, require_encryption=True)
    for address, security in ((plain, None), (cluster.address, cluster.clientSecurity(withCertificate=False)),
                              (cluster.address, foreign)):
        job = _phantomRun(remoteLogic, tinyModels["phantomModel"], volume, cluster=address, clusterSecurity=security)
        with pytest.raises(ValueError, match=f"Could not connect to the Dask scheduler at '{address}'"):
            job.wait()
    assert remoteLogic.scene.GetNumberOfNodes() == nodes


@pytest.mark.slow
def test_plain_tcp_beyond_loopback_missing_tls_or_consent_are_refused_before_anything_is_sent(remoteLogic, tinyModels,
                                                                                            tmp_path):  # noqa: F811
    from distributed.security import Security

    (volume,), _ = phantomVolume(remoteLogic, seed=935)
    store = ConsentStore(str(tmp_path / "consent.json"))
    remoteLogic.setClusterConsentStore(store)
    asked = []
    remoteLogic.clusterConsentCallback = lambda address: asked.append(address) or False
    nodes = remoteLogic.scene.GetNumberOfNodes()
    security = Security(require_encryption=True)
    cases = [("tcp://10.1.2.3:8786", None, "Refusing to send images to 'tcp://10.1.2.3:8786' over tcp"),
             ("tls://10.1.2.3:8786", None, "needs TLS settings"),
             ("tls://10.1.2.3:8786", security, r"not agreed to that yet\. Nothing was sent"),
             ("no address", None, "not a Dask scheduler address")]
    for address, clusterSecurity, message in cases:
        start = time.time()
        with pytest.raises(ValueError, match=message):
            _phantomRun(remoteLogic, tinyModels["phantomModel"], volume, cluster=address,
                        clusterSecurity=clusterSecurity)
        assert time.time() - start < 2.0  # no connection was tried
    assert asked == ["tls://10.1.2.3:8786"] and not store.allowedServers()
    assert remoteLogic.scene.GetNumberOfNodes() == nodes
    assert remoteLogic.allowCluster(" tls://10.1.2.3:8786 ") == "tls://10.1.2.3:8786"  # remembered in the file
    assert ConsentStore(store.path).isAllowed("tls://10.1.2.3:8786")
    remoteLogic.revokeCluster("tls://10.1.2.3:8786")
    assert not ConsentStore(store.path).allowedServers()


@pytest.mark.slow
def test_the_command_line_runs_the_case_on_the_cluster_by_address(remoteLogic, tinyModels, cluster, tmp_path,
                                                                  capsys):  # noqa: F811
    from AISegmentationLib.CommandLine import Main as AISegmentationCLI

    (volume,), truth = phantomVolume(remoteLogic, seed=936)
    inputPath = remoteLogic.saveVolume(volume, str(tmp_path / "phantom.nii.gz"))
    output = tmp_path / "phantom.seg.nrrd"
    tls = cluster.tls
    common = ["segment", "nnunet", inputPath, "--model", tinyModels["phantomModel"], "--folds", "0", "--no-tta",
              "--device", "cpu", "--output", str(output)]
    assert AISegmentationCLI.main([*common, "--scheduler", "tcp://10.1.2.3:8786"]) == 2
    assert "over tcp" in capsys.readouterr().err and not output.exists()
    code = AISegmentationCLI.main([*common, "--scheduler", cluster.address, "--tls-ca-file", tls.ca, "--tls-cert",
                                   tls.clientCert, "--tls-key", tls.clientKey])
    assert code == 0, capsys.readouterr().err
    assert f"Ran on dask:{cluster.address}/isolated:nnunet" in capsys.readouterr().out
    segmentation = remoteLogic.loadSegmentation(str(output))
    requireLabelDice(remoteLogic, segmentation, remoteLogic.loadVolume(inputPath), truth, PHANTOM_LABELS)


@pytest.mark.slow
def test_a_gpu_job_waits_for_a_gpu_worker_and_cancel_withdraws_it(remoteLogic, tinyModels, cluster):  # noqa: F811
    """device "cuda" asks for the GPU resource: the cluster's only worker declares none, so the case waits (it would
    fail there at once otherwise: no CUDA on this machine) until Cancel withdraws it."""
    (volume,), _ = phantomVolume(remoteLogic, seed=937)
    job = remoteLogic.startBackend("nnunet", volume, modelFolders=[tinyModels["phantomModel"]], device="cuda",
                                   tta=False, folds=0, cluster=cluster.address, clusterSecurity=cluster.clientSecurity())
    time.sleep(6.0)
    assert not job.done and job.message == "Waiting for a Dask worker" and job.workerPid is None, job.logLines()
    assert any("needs a worker with {'GPU': 1}" in line for line in job.logLines())
    start = time.time()
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait()
    assert time.time() - start < 3.0


def _startLongRemoteRun(logic, model, address):
    """A long run of the tiny model on the cluster at address, once its child runs on the worker."""
    big = makeVolume(logic, np.random.default_rng(6).normal(40, 25, (96, 160, 160)).astype(np.float32), name="big")
    job = logic.startBackend("nnunet", big, modelFolders=[model], device="cpu", tta=True, stepSize=0.1, folds=0,
                             cluster=address)
    deadline = time.time() + 120
    while not job.workerPid and not job.done and time.time() < deadline:
        time.sleep(0.05)
    assert job.workerPid, job.logLines()[-10:]
    return job


@pytest.mark.slow
def test_a_dead_worker_and_a_lost_scheduler_are_clear_errors_and_nothing_is_written(remoteLogic, tinyModels,
                                                                                  tmp_path):  # noqa: F811
    """A plain-TCP cluster on loopback (no TLS needed there) whose scheduler gives a case up at its worker's first
    death; its worker dies (the backend child ends with it), then its scheduler."""
    import signal

    env = dict(os.environ, PYTHONPATH=MODULE_DIR, AISEGMENTATION_BACKEND_THREADS="1")
    strict = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0")
    with daskCluster(tmp_path, workerEnv=env, schedulerEnv=strict) as plain:
        assert plain.address.startswith("tcp://127.0.0.1:")
        nodes = remoteLogic.scene.GetNumberOfNodes()
        job = _startLongRemoteRun(remoteLogic, tinyModels["phantomModel"], plain.address)
        os.killpg(plain.processes[1].pid, signal.SIGKILL)  # the worker and its nanny
        with pytest.raises(RuntimeError, match="the Dask worker running it died"):
            job.wait(timeout=60)
        start = time.time()
        while not processGroupGone(job.workerPid) and time.time() - start < 10:
            time.sleep(0.05)
        assert processGroupGone(job.workerPid), "the backend child outlived its worker"
        assert job.state == "failed" and remoteLogic.scene.GetNumberOfNodes() == nodes + 2  # + the big volume

        plain.startWorker("worker-again", env)
        plain.waitForWorkers(1)
        nodes = remoteLogic.scene.GetNumberOfNodes()
        job = _startLongRemoteRun(remoteLogic, tinyModels["phantomModel"], plain.address)
        os.killpg(plain.processes[0].pid, signal.SIGKILL)  # the scheduler
        with pytest.raises(RuntimeError, match="lost the connection to the Dask scheduler"):
            job.wait(timeout=60)
        assert job.state == "failed" and remoteLogic.scene.GetNumberOfNodes() == nodes + 2


def test_the_worker_side_imports_without_slicer():
    """A Dask worker on a GPU server has distributed and this package on its path, not Slicer: the function it runs
    and everything that function imports must import without slicer or vtk (the worker's real import, in a child)."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('slicer', 'vtk', 'qt', 'slicer_core'):\n"
        "            raise ImportError('no ' + name + ' on a worker')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from AISegmentationLib.Backends import Registry\nfrom AISegmentationLib.Backends.Jobs import RemoteRun\n"
        "from AISegmentationLib.Training import ClusterFolds\n"  # the training folds' worker function too
        "print(sorted(Registry.backendNames()), callable(RemoteRun.runBackendOnWorker) and "
        "callable(ClusterFolds.fitFoldOnWorker))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=MODULE_DIR))
    assert done.returncode == 0, done.stderr
    assert "'nnunet'" in done.stdout and done.stdout.strip().endswith("True")
