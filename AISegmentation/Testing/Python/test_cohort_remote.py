"""A cohort sent by address to a Dask scheduler and worker that the test starts as separate ``dask`` processes on
127.0.0.1 over TLS (certificates made here with the openssl CLI); a plain-tcp address beyond loopback is refused;
``aisegmentation batch`` end to end as a child process: Ctrl-C stops it cleanly, a rerun finishes the rest."""

import json
import os
import signal
import subprocess

import pytest
from CommandLineProcess import MODULE_DIR, cliCommand, cliEnvironment, runCli
from DevTools.DaskProcesses import daskCluster, makeTlsCertificates
from DevTools.SyntheticCohort import phantomModelOptions, writeManifest, writePhantomCohort
from DevTools.TinyModels import nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.AtomicWrite import isTemporaryName
from AISegmentationLib.Cluster import ClusterConnection
from AISegmentationLib.Cohort.CohortLogic import CohortLogic

pytestmark = pytest.mark.slow


def _temporaryLeftovers(folder):
    return [name for root, folders, files in os.walk(folder) for name in folders + files if isTemporaryName(name)]


def test_scheduler_and_worker_processes_receive_a_cohort_over_tls(logic, tinyModels, tmp_path):
    environment = dict(cliEnvironment(), DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="2")
    with daskCluster(tmp_path / "cluster", tls=makeTlsCertificates(tmp_path / "tls"), workerEnv=environment,
                     schedulerEnv=environment) as cluster:
        address, security = cluster.address, cluster.clientSecurity()
        client = ClusterConnection.connectClient(address, security, timeout=10)
        try:
            workerPids = set(client.run(os.getpid).values())
            assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 2
        finally:
            client.close()
        manifest = writeManifest(tmp_path / "cohort.csv", writePhantomCohort(logic, tmp_path, 1))
        result = CohortLogic(logic).runCohort(manifest, str(tmp_path / "out"), backend="nnunet",
                                 backendOptions=phantomModelOptions(tinyModels), scheduler=address, security=security)
        assert result.counts["done"] == 1, [r.get("error") for r in result.records]
        assert {int(record["worker"].split(":")[-1]) for record in result.records} <= workerPids
        assert os.getpid() not in workerPids
        assert all(float(row["dice"]) >= 0.9 for record in result.records for row in record["metrics"])

        with pytest.raises(ValueError, match="over tcp: a scheduler beyond this machine must be reached over TLS"):
            CohortLogic(logic).runCohort(manifest, str(tmp_path / "refused"), backend="nnunet",
                            backendOptions=phantomModelOptions(tinyModels), scheduler="tcp://192.0.2.10:8786")
        with pytest.raises(ValueError, match="needs TLS settings"):
            CohortLogic(logic).runCohort(manifest, str(tmp_path / "refused"), backend="nnunet",
                            backendOptions=phantomModelOptions(tinyModels), scheduler="tls://192.0.2.10:8786")
        assert not os.path.exists(tmp_path / "refused")  # refused before anything was written
        plain = address.replace("tls://", "tcp://")
        with pytest.raises(ValueError, match=f"Could not connect to the Dask scheduler at '{plain}'"):
            ClusterConnection.connectClient(plain, timeout=2)  # TLS-only scheduler


def test_batch_command_line_ctrl_c_then_rerun_finishes(logic, tinyModels, tmp_path):
    manifest = writeManifest(tmp_path / "cohort.csv", writePhantomCohort(logic, tmp_path, 3) + [
        {"case": "missing", "image": "images/missing.nii.gz"}])
    output = tmp_path / "out"
    arguments = ["batch", manifest, "--output", output, "--workers", "2", "--steps", "segment,compare,volumes",
                 "nnunet", "--model", tinyModels["phantomModel"], "--device", "cpu", "--no-tta"]
    process = subprocess.Popen(cliCommand(*arguments), env=cliEnvironment(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=MODULE_DIR)
    progressLines = []
    for line in process.stderr:
        progressLines.append(line)
        if " cases: " in line and not line.startswith("[ "):
            break  # a case finished
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    print(f"\nCtrl-C: {stdout}")
    assert process.returncode == 130, stderr[-2000:]
    assert "Dask dashboard: http://127.0.0.1:" in stdout and "cancelled" in stdout
    assert "interrupted (Ctrl-C)" in stderr
    assert not _temporaryLeftovers(output)
    finished = {name: json.loads((output / "cases" / name / "case.json").read_text())["status"]
                for name in os.listdir(output / "cases") if (output / "cases" / name / "case.json").exists()}
    assert 1 <= len(finished) < 4 and f"{list(finished.values()).count('done')} done" in stdout

    completed = runCli(*arguments)
    print(completed.stdout)
    assert completed.returncode == 2  # one case failed: its image is missing
    assert f"{list(finished.values()).count('done')} skipped (finished earlier)" in completed.stdout
    assert "FAILED missing: Image" in completed.stdout and "does not exist" in completed.stdout
    assert "error: 1 of 4 cases failed" in completed.stderr
    records = {name: json.loads((output / "cases" / name / "case.json").read_text()) for name in
               os.listdir(output / "cases")}
    assert sorted(status["status"] for status in records.values()) == ["done"] * 3 + ["failed"]
    assert (output / "report.html").exists() and (output / "cohort.parquet").exists()
    help = runCli("batch", manifest, "--output", output, "nnunet", "--help")
    assert help.returncode == 0 and "--model" in help.stdout and "--step-size" in help.stdout
