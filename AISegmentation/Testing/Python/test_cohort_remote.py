"""A cohort sent by address to a Dask scheduler and worker that the test starts as separate ``dask`` processes on
127.0.0.1 over TLS (certificates made here with the openssl CLI); a plain-tcp address beyond loopback is refused;
``aisegmentation batch`` end to end as a child process: Ctrl-C stops it cleanly, a rerun finishes the rest."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from CommandLineProcess import MODULE_DIR, cliCommand, cliEnvironment, runCli
from DevTools.SyntheticCohort import phantomModelOptions, writeManifest, writePhantomCohort
from DevTools.TinyModels import nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.AtomicWrite import isTemporaryName
from AISegmentationLib.Cohort import ClusterConnection

pytestmark = pytest.mark.slow
DASK = os.path.join(os.path.dirname(sys.executable), "dask")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(folder):
    """(CA file, certificate, key): a CA made here and one certificate it signed for 127.0.0.1 / localhost, used by
    the scheduler, the worker and the client alike."""
    os.makedirs(folder)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=AISegmentation test CA", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out", "node.csr", "-subj",
             "/CN=127.0.0.1", cwd=folder)
    with open(os.path.join(folder, "san.cnf"), "w", encoding="ascii") as file:
        file.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
             "node.pem", "-days", "2", "-extfile", "san.cnf", cwd=folder)
    return tuple(os.path.join(folder, name) for name in ("ca.pem", "node.pem", "node.key"))


def _tlsArguments(ca, cert, key):
    return ["--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key]


def _temporaryLeftovers(folder):
    return [name for root, folders, files in os.walk(folder) for name in folders + files if isTemporaryName(name)]


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_scheduler_and_worker_processes_receive_a_cohort_over_tls(logic, tinyModels, tmp_path):
    ca, cert, key = _certificates(str(tmp_path / "tls"))
    port = ClusterConnection.freePort()
    address = f"tls://127.0.0.1:{port}"
    environment = dict(cliEnvironment(), DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="2")
    logs = [open(tmp_path / name, "w") for name in ("scheduler.log", "worker.log")]
    scheduler = subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--protocol", "tls",
                                  "--no-dashboard", *_tlsArguments(ca, cert, key)], env=environment,
                                 stdout=logs[0], stderr=subprocess.STDOUT)
    worker = None
    try:
        worker = subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                   "--name", "remote-worker", *_tlsArguments(ca, cert, key)], env=environment,
                                  stdout=logs[1], stderr=subprocess.STDOUT)
        security = ClusterConnection.makeSecurity(ca, cert, key)
        deadline = time.time() + 60
        while True:
            try:
                client = ClusterConnection.connectClient(address, security, timeout=5)
                break
            except ValueError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        try:
            client.wait_for_workers(1, timeout=60)
            workerPids = set(client.run(os.getpid).values())
            assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) == 2
        finally:
            client.close()
        manifest = writeManifest(tmp_path / "cohort.csv", writePhantomCohort(logic, tmp_path, 1))
        result = logic.runCohort(manifest, str(tmp_path / "out"), backend="nnunet",
                                 backendOptions=phantomModelOptions(tinyModels), scheduler=address, security=security)
        assert result.counts["done"] == 1, [r.get("error") for r in result.records]
        assert {int(record["worker"].split(":")[-1]) for record in result.records} <= workerPids
        assert os.getpid() not in workerPids
        assert all(float(row["dice"]) >= 0.9 for record in result.records for row in record["metrics"])

        with pytest.raises(ValueError, match="over tcp: a scheduler beyond this machine must be reached over TLS"):
            logic.runCohort(manifest, str(tmp_path / "refused"), backend="nnunet",
                            backendOptions=phantomModelOptions(tinyModels), scheduler="tcp://192.0.2.10:8786")
        with pytest.raises(ValueError, match="needs TLS settings"):
            logic.runCohort(manifest, str(tmp_path / "refused"), backend="nnunet",
                            backendOptions=phantomModelOptions(tinyModels), scheduler="tls://192.0.2.10:8786")
        assert not os.path.exists(tmp_path / "refused")  # refused before anything was written
        with pytest.raises(ValueError, match=f"Could not connect to the Dask scheduler at 'tcp://127.0.0.1:{port}'"):
            ClusterConnection.connectClient(f"tcp://127.0.0.1:{port}", timeout=2)  # TLS-only scheduler
    finally:
        for process in (worker, scheduler):
            if process is not None:
                _stop(process)
        for log in logs:
            log.close()


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
