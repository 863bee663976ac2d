"""Sample data download: pooch when installed, a checksum-verified plain download where it is not yet (desktop
Slicer before its runtime requirements are installed, e.g. the self-test). Served from a loopback HTTP server."""

import functools
import hashlib
import http.server
import os
import sys
import threading

import pytest

from AISegmentationLib import SampleData


@pytest.fixture
def served(tmp_path):
    """(base URL, file name, sha256) of a file served on 127.0.0.1 by a server this test starts and stops."""
    folder = tmp_path / "served"
    folder.mkdir()
    content = os.urandom(50000)
    (folder / "sample.bin").write_bytes(content)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", "sample.bin", hashlib.sha256(content).hexdigest()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("withPooch", [True, False])
def test_download_is_kept_only_when_its_checksum_matches(served, tmp_path, monkeypatch, withPooch):
    baseUrl, name, sha256 = served
    monkeypatch.setenv(SampleData.CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    if not withPooch:
        monkeypatch.setitem(sys.modules, "pooch", None)  # import pooch raises ImportError, as before the install
    path = SampleData._retrieve(baseUrl + name, sha256, "copy.bin")
    assert SampleData.fileSha256(path) == sha256
    with pytest.raises(ValueError):
        SampleData._retrieve(baseUrl + name, "0" * 64, "other.bin")
    assert sorted(os.listdir(tmp_path / "cache")) == ["copy.bin"]  # nothing half-written or unverified is kept
