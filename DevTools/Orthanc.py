"""Test helper: a real Orthanc PACS with its DICOMweb plugin (Debian's orthanc and orthanc-dicomweb packages, which
.ci/run installs when missing), started on a free port of this machine with its own temporary storage.

    with OrthancServer(folder) as orthanc:
        orthanc.dicomWebUrl, orthanc.credentialsFile   # http://127.0.0.1:PORT/dicom-web, {"username", "password"}

Orthanc 1.10 listens on every interface (it has no bind-address setting); RemoteAccessAllowed false makes it answer
only connections from this machine, and it asks for a user and a random password. Its DICOM (DIMSE) port is off.
The process is stopped (SIGTERM, then SIGKILL) when the context ends.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
START_SECONDS = 60


def orthancAvailable():
    """None when Orthanc and its DICOMweb plugin are installed, else what is missing."""
    missing = [path for path in (ORTHANC, DICOMWEB_PLUGIN) if not os.path.exists(path)]
    return f"missing {', '.join(missing)} (apt-get install orthanc orthanc-dicomweb)" if missing else None


def freePort():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OrthancServer:
    """Orthanc with DICOMweb on 127.0.0.1:<free port>, storage under folder (see the module docstring)."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.port = freePort()
        self.username, self.password = "aisegmentation", secrets.token_urlsafe(16)
        self.process = None
        self.logPath = os.path.join(self.folder, "orthanc.log")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomWebUrl(self):
        return f"{self.url}/dicom-web"

    @property
    def credentialsFile(self):
        return os.path.join(self.folder, "credentials.json")

    def __enter__(self):
        storage = os.path.join(self.folder, "storage")
        os.makedirs(storage, exist_ok=True)
        configuration = {
            "Name": "AISegmentationTest", "StorageDirectory": storage, "IndexDirectory": storage,
            "HttpPort": self.port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True, "RegisteredUsers": {self.username: self.password},
            "Plugins": [DICOMWEB_PLUGIN], "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "SaveJobs": False, "HttpThreadsCount": 4, "ConcurrentJobs": 1, "StorageCompression": False}
        configPath = os.path.join(self.folder, "orthanc.json")
        with open(configPath, "w", encoding="utf-8") as file:
            json.dump(configuration, file)
        with open(self.credentialsFile, "w", encoding="utf-8") as file:
            json.dump({"username": self.username, "password": self.password}, file)
        with open(self.logPath, "wb") as log:
            self.process = subprocess.Popen([ORTHANC, configPath], cwd=self.folder, stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            self._waitUntilAnswering()
        except BaseException:
            self.stop()
            raise
        return self

    def _waitUntilAnswering(self):
        deadline = time.time() + START_SECONDS
        request = urllib.request.Request(f"{self.url}/system")
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, self.url, self.username, self.password)
        opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc ended with code {self.process.returncode}: {self.log()[-2000:]}")
            try:
                with opener.open(request, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"Orthanc did not answer within {START_SECONDS} s: {self.log()[-2000:]}")

    def log(self):
        try:
            with open(self.logPath, encoding="utf-8", errors="replace") as file:
                return file.read()
        except OSError:
            return ""

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def __exit__(self, *exception):
        self.stop()
        shutil.rmtree(os.path.join(self.folder, "storage"), ignore_errors=True)
