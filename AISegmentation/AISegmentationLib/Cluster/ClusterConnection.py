"""Where cases run: a LocalCluster on this computer, or an existing Dask cluster reached by address.

Images leave this machine only over TLS (``tls://`` with a ``distributed.security.Security`` that requires
encryption) unless the scheduler address is this machine's own (loopback). Clusters we start allow a case's worker
to die ``ALLOWED_FAILURES`` times before the case is given up; on a cluster you start yourself set the same value
in the scheduler's configuration, e.g. ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=2 dask scheduler`` or
``distributed: scheduler: allowed-failures: 2`` in ``~/.config/dask/distributed.yaml`` (Dask's default is 3).

GPU workers are declared with the Dask resource ``GPU_RESOURCE``: ``dask worker ADDRESS --resources "GPU=1"``;
a job on device "cuda" asks for ``resourcesFor("cuda")`` so it runs only there.
"""

import contextlib
import logging
import os
import socket

from ..Addresses import isLoopbackHost

GPU_RESOURCE = "GPU"
ALLOWED_FAILURES = 2
DEFAULT_MEMORY_PER_WORKER = 2 * 1024 ** 3
CONNECT_TIMEOUT = 10


def resourcesFor(device):
    """Dask resources a job on `device` needs: one GPU for "cuda" (or "cuda:N"), none otherwise."""
    return {GPU_RESOURCE: 1} if str(device or "").lower().startswith("cuda") else {}


def _parseAddress(address):
    """(scheme, host) of a Dask scheduler address; ValueError when it is not one."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port

    text = (address or "").strip() if isinstance(address, str) else ""
    if not text:
        raise ValueError("No Dask scheduler address given (for example tls://gpu-server:8786)")
    try:
        scheme, location = parse_address(text)
        host = parse_host_port(location)[0] if scheme in ("tcp", "tls") else location
    except (ValueError, TypeError) as error:
        raise ValueError(f"'{address}' is not a Dask scheduler address ({error}); use tls://host:port, or "
                         "tcp://127.0.0.1:port on this machine") from None
    if scheme not in ("tcp", "tls", "inproc", "ucx", "ws", "wss"):
        raise ValueError(f"'{address}' uses the unknown protocol '{scheme}'; use tls://host:port")
    return scheme, host


def isLoopbackAddress(address):
    """True when a Dask scheduler address points at this machine itself (localhost, 127.0.0.0/8, ::1, inproc)."""
    scheme, host = _parseAddress(address)
    return scheme == "inproc" or isLoopbackHost(host)


def requireSecureAddress(address, security=None):
    """ValueError unless images sent to `address` stay on this machine (loopback) or travel encrypted: a
    ``tls://`` address with a Security object that requires encryption. Returns the address, stripped."""
    scheme, _host = _parseAddress(address)
    if isLoopbackAddress(address):
        return address.strip()
    if scheme not in ("tls", "wss"):
        raise ValueError(f"Refusing to send images to '{address}' over {scheme}: a scheduler beyond this machine "
                         "must be reached over TLS (tls://host:port with a CA file, a certificate and a key)")
    if security is None or not getattr(security, "require_encryption", False):
        raise ValueError(f"The scheduler '{address}' needs TLS settings: give a CA file, a client certificate and "
                         "its key (makeSecurity / --tls-ca-file, --tls-cert, --tls-key)")
    return address.strip()


def makeSecurity(caFile, certFile, keyFile):
    """distributed.security.Security with TLS required, from a CA file, a certificate and its private key (PEM).
    ValueError naming each missing file."""
    named = (("CA file", caFile), ("certificate", certFile), ("private key", keyFile))
    missing = [f"{what} '{path}'" if path else f"{what} (not given)"
               for what, path in named if not path or not os.path.isfile(os.fspath(path))]
    if missing:
        raise ValueError(f"TLS needs a CA file, a certificate and its key; missing: {', '.join(missing)}")
    from distributed.security import Security

    return Security(tls_ca_file=os.fspath(caFile), tls_client_cert=os.fspath(certFile),
                    tls_client_key=os.fspath(keyFile), require_encryption=True)


def connectClient(address, security=None, timeout=CONNECT_TIMEOUT):
    """distributed.Client on an existing scheduler (checked with requireSecureAddress first). ValueError naming the
    address and the reason when it cannot connect within `timeout` seconds."""
    address = requireSecureAddress(address, security)
    from distributed import Client

    try:
        return Client(address, security=security, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise ValueError(f"Could not connect to the Dask scheduler at '{address}': {reason}") from None


def freePort(host="127.0.0.1"):
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _totalMemory():
    import psutil

    return int(psutil.virtual_memory().total)


def localClusterSize(workers=None, memoryPerWorkerBytes=None):
    """(number of workers, memory limit per worker in bytes) for this computer: one worker per core, fewer when
    the memory does not hold that many cases of `memoryPerWorkerBytes` (a backend's estimate per case)."""
    cores = os.cpu_count() or 1
    total = _totalMemory()
    perCase = int(memoryPerWorkerBytes) if memoryPerWorkerBytes else None
    if workers is not None:
        if int(workers) != workers or workers < 1:
            raise ValueError(f"The number of workers must be a whole number >= 1, got {workers!r}")
        count = int(workers)
    else:
        count = max(1, min(cores, total // (perCase or DEFAULT_MEMORY_PER_WORKER)))
    limit = total // count
    if perCase and perCase > limit:
        logging.warning("%d workers of %.1f GB each exceed this computer's %.1f GB of memory", count,
                        perCase / 1024 ** 3, total / 1024 ** 3)
    return count, int(limit)


def openLocalCluster(workers=None, memoryPerWorkerBytes=None, resources=None, security=None,
                     allowedFailures=ALLOWED_FAILURES, **clusterOptions):
    """(LocalCluster, Client): worker processes (one thread each) on this computer, sized by localClusterSize,
    the scheduler and workers on 127.0.0.1 and the dashboard on a free 127.0.0.1 port. `resources` (e.g.
    {"GPU": 1}) are declared on every worker."""
    import dask
    from distributed import Client, LocalCluster

    count, memoryLimit = localClusterSize(workers, memoryPerWorkerBytes)
    with dask.config.set({"distributed.scheduler.allowed-failures": int(allowedFailures)}):
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=f"127.0.0.1:{freePort()}", memory_limit=memoryLimit,
                               resources=resources or None, security=security, **clusterOptions)
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    logging.info("Dask LocalCluster: %d workers, %.1f GB each, dashboard %s", count, memoryLimit / 1024 ** 3,
                 dashboardLink(client))
    return cluster, client


@contextlib.contextmanager
def openCluster(scheduler=None, security=None, workers=None, memoryPerCase=None, resources=None):
    """Yield a distributed.Client: on a new LocalCluster when `scheduler` is None (closed at the end), otherwise on
    the scheduler at that address (only the client is closed; the cluster is not ours)."""
    if scheduler:
        client = connectClient(scheduler, security)
        try:
            yield client
        finally:
            client.close()
        return
    cluster, client = openLocalCluster(workers, memoryPerCase, resources=resources)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def dashboardLink(client):
    """The Dask dashboard's URL for a client, or None when the scheduler serves none."""
    try:
        link = client.dashboard_link
    except (AttributeError, KeyError, ValueError):
        return None
    return link or None
