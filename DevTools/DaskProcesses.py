"""A real Dask cluster on 127.0.0.1 for tests and benchmarks: a scheduler and workers started as separate ``dask``
processes (as a user starts them on a server), optionally over TLS with certificates made here by the openssl CLI.

    certificates = makeTlsCertificates(folder)            # CA, scheduler/worker certificate, client certificate
    with daskCluster(folder, tls=certificates, workerEnv={"PYTHONPATH": ...}) as cluster:
        cluster.address                                   # tls://127.0.0.1:PORT
        cluster.clientSecurity()                          # distributed.security.Security of a client
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

READY_TIMEOUT = 60.0


def _openssl(*arguments, cwd):
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True)


def _signedCertificate(folder, name, commonName, days=2):
    """<name>.pem and <name>-key.pem signed by the CA in folder (ca.pem, ca-key.pem), valid for 127.0.0.1."""
    extensions = os.path.join(folder, f"{name}.ext")
    with open(extensions, "w", encoding="ascii") as file:
        file.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj",
             f"/CN={commonName}", cwd=folder)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
             "-out", f"{name}.pem", "-days", str(days), "-extfile", extensions, cwd=folder)
    return os.path.join(folder, f"{name}.pem"), os.path.join(folder, f"{name}-key.pem")


@dataclass
class TlsCertificates:
    ca: str
    serverCert: str
    serverKey: str
    clientCert: str
    clientKey: str

    def processFlags(self):
        """The dask scheduler / worker command-line flags."""
        return ["--tls-ca-file", self.ca, "--tls-cert", self.serverCert, "--tls-key", self.serverKey]


def makeTlsCertificates(folder):
    """A test CA and two certificates it signed (the cluster's, a client's), all for 127.0.0.1, in folder."""
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=AISegmentation test CA", cwd=folder)
    serverCert, serverKey = _signedCertificate(folder, "cluster", "127.0.0.1")
    clientCert, clientKey = _signedCertificate(folder, "client", "aisegmentation-client")
    return TlsCertificates(os.path.join(folder, "ca.pem"), serverCert, serverKey, clientCert, clientKey)


class DaskCluster:
    """A scheduler process and worker processes; see daskCluster()."""

    def __init__(self, folder, tls=None):
        self.folder = os.fspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.tls = tls
        self.schedulerFile = os.path.join(self.folder, "scheduler.json")
        self.processes = []
        self.address = None

    def _start(self, arguments, name, env=None):
        log = open(os.path.join(self.folder, f"{name}.log"), "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen([sys.executable, "-m", "dask", *arguments], stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
        process.logFile = log
        self.processes.append(process)
        return process

    def startScheduler(self, env=None):
        flags = self.tls.processFlags() if self.tls else []
        protocol = ["--protocol", "tls"] if self.tls else []
        self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                     self.schedulerFile, *protocol, *flags], "scheduler", env)
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            if os.path.isfile(self.schedulerFile):
                try:
                    with open(self.schedulerFile, encoding="utf-8") as file:
                        self.address = json.load(file)["address"]
                    return self.address
                except (ValueError, KeyError):
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"The dask scheduler did not start; see {self.folder}/scheduler.log")

    def startWorker(self, name="worker", env=None, resources=None):
        """A worker process (with its nanny) of one thread; env: its environment variables (default: this one)."""
        flags = self.tls.processFlags() if self.tls else []
        extra = ["--resources", ",".join(f"{key}={value}" for key, value in resources.items())] if resources else []
        self._start(["worker", self.address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
                     "--no-dashboard", "--memory-limit", "0", "--name", name, *flags, *extra], name, env)

    def clientSecurity(self, withCertificate=True):
        from distributed.security import Security

        if self.tls is None:
            return None
        if not withCertificate:
            return Security(tls_ca_file=self.tls.ca, require_encryption=True)
        return Security(tls_ca_file=self.tls.ca, tls_client_cert=self.tls.clientCert,
                        tls_client_key=self.tls.clientKey, require_encryption=True)

    def waitForWorkers(self, count, timeout=READY_TIMEOUT):
        from distributed import Client

        with Client(self.address, security=self.clientSecurity(), timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self):
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            process.logFile.close()


@contextlib.contextmanager
def daskCluster(folder, tls=None, workers=1, workerEnv=None, resources=None, schedulerEnv=None):
    """A scheduler on 127.0.0.1 (a free port; tls:// when certificates are given) and `workers` workers, all
    separate processes, stopped at the end; *Env: their environment variables (default: this process's)."""
    cluster = DaskCluster(folder, tls)
    try:
        cluster.startScheduler(schedulerEnv)
        for index in range(workers):
            cluster.startWorker(f"worker-{index}", workerEnv, resources)
        cluster.waitForWorkers(workers)
        yield cluster
    finally:
        cluster.stop()
