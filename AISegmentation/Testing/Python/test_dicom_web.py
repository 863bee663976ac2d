"""The DICOMweb client's rules without a PACS (Dicom/DicomWeb.py, Dicom/PacsLogic.py): addresses (https beyond this
machine, no credentials in a URL), credentials from a file or the environment and never shown, consent per address,
and servers that are down, slow or answer garbage (loopback HTTP servers this test starts): each fails with a clear
message, leaves nothing retrieved on disk, and a PACS cohort records the failure and goes on."""

import http.server
import json
import os
import threading
import time

import pytest

from AISegmentationLib.Consent import ConsentStore
from AISegmentationLib.Dicom.DicomWeb import DicomWebServer, normalizeDicomWebUrl, readCredentials
from AISegmentationLib.Cohort.CohortLogic import CohortLogic
from DevTools.Orthanc import freePort

STUDY, SERIES = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
SECRET = "s3cret-Passw0rd"


class _Handler(http.server.BaseHTTPRequestHandler):
    mode = "garbage"

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.server.mode == "slow":
            time.sleep(3)
        body = os.urandom(2000)
        self.send_response(200)
        self.send_header("Content-Type", "multipart/related; type=\"application/dicom\"; boundary=xyz"
                         if "/series/" in self.path else "application/dicom+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(params=["garbage", "slow"])
def badServer(request):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.mode = request.param
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield request.param, f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_addresses_credentials_and_consent(logic, tmp_path, monkeypatch):
    assert normalizeDicomWebUrl("http://127.0.0.1:8042/dicom-web/") == "http://127.0.0.1:8042/dicom-web"
    for url, message in (("http://pacs.example.org/dicom-web", "over plain http"),
                         ("https://user:pw@pacs.example.org/dicom-web", "not in the URL"),
                         ("ftp://pacs", "not a DICOMweb URL"), ("", "not a DICOMweb URL")):
        with pytest.raises(ValueError, match=message):
            normalizeDicomWebUrl(url)
    credentials = tmp_path / "pacs.json"
    credentials.write_text(json.dumps({"username": "reader", "password": SECRET}))
    assert readCredentials(credentials) == {"username": "reader", "password": SECRET}
    (tmp_path / "bad.json").write_text("user:pass")
    with pytest.raises(ValueError, match="not valid JSON"):
        readCredentials(tmp_path / "bad.json")
    assert readCredentials(None, {"AISEGMENTATION_DICOMWEB_TOKEN": "abc"}) == {"token": "abc"}
    logic.setDicomWebConsentStore(ConsentStore(None))
    with pytest.raises(ValueError, match="not agreed to that yet"):
        logic.connectDicomWeb("https://pacs.example.org/dicom-web", credentialsFile=credentials)
    assert logic.allowDicomWeb("https://pacs.example.org/dicom-web/") == "https://pacs.example.org"
    server = logic.connectDicomWeb("https://pacs.example.org/dicom-web", credentialsFile=credentials)
    assert SECRET not in repr(server) and SECRET not in str(vars(server))
    asked = []
    logic.dicomWebConsentCallback = lambda origin: asked.append(origin) or False
    with pytest.raises(ValueError, match="not agreed"):
        logic.connectDicomWeb("https://other.example.org:8443/dicom-web")
    assert asked == ["https://other.example.org:8443"]
    logic.connectDicomWeb(f"http://127.0.0.1:{freePort()}/dicom-web")  # this machine: no consent needed


def test_a_down_server_fails_clearly_and_leaves_nothing(tmp_path):
    credentials = tmp_path / "pacs.json"
    credentials.write_text(json.dumps({"username": "reader", "password": SECRET}))
    server = DicomWebServer(f"http://127.0.0.1:{freePort()}/dicom-web", credentialsFile=credentials)
    with pytest.raises(ValueError, match="cannot be reached") as error:
        server.retrieveSeries(STUDY, SERIES, tmp_path / "series")
    assert SECRET not in str(error.value) and not (tmp_path / "series").exists()
    with pytest.raises(ValueError, match="not a DICOM StudyInstanceUID"):
        server.retrieveSeries("../../etc", SERIES, tmp_path / "series")


def test_a_slow_or_garbage_server_fails_its_case_and_the_cohort_goes_on(logic, badServer, tmp_path):
    mode, url = badServer
    server = DicomWebServer(url, timeout=1.0)
    started = time.time()
    with pytest.raises(ValueError, match="timed out" if mode == "slow" else "not valid DICOMweb"):
        server.retrieveSeries(STUDY, SERIES, tmp_path / "series")
    assert time.time() - started < 10 and not (tmp_path / "series").exists()
    result = CohortLogic(logic).runPacsCohort(server, tmp_path / "out", studies=[STUDY], series=[f"{STUDY}/{SERIES}"])
    assert result.cohort is None and len(result.failedTransfers) == 2
    assert all(url in transfer["error"] for transfer in result.transfers)
    report = json.loads((tmp_path / "out" / "pacs.json").read_text())
    assert report["server"] == url and len(report["transfers"]) == 2
    assert not (tmp_path / "out" / ".pacs-retrieved").exists()
