"""Quick tests of the web front end's access rules (no server, no browser): loopback, tokens, upload limits."""

import pytest
from AISegmentationWeb.Access import isLoopback, pageUrl, requireAccessSettings, requireUploadSize


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.20", False), ("", False)])
def test_loopback_hosts(host, expected):
    assert isLoopback(host) is expected


def test_loopback_gets_a_random_token_and_keeps_a_given_one():
    first, second = requireAccessSettings("127.0.0.1", None, 10), requireAccessSettings("127.0.0.1", None, 10)
    assert first != second and len(first) >= 16
    assert requireAccessSettings("0.0.0.0", "a-token-of-twenty-chars", 10) == "a-token-of-twenty-chars"


@pytest.mark.parametrize("host, token, limit, message", [
    ("0.0.0.0", None, 10, "give --token"),
    ("10.0.0.5", "", 10, "give --token"),
    ("127.0.0.1", "short", 10, "at least 16 characters"),
    ("127.0.0.1", None, 0, "--max-upload-mb must be a positive number"),
    ("127.0.0.1", None, float("nan"), "--max-upload-mb must be a positive number"),
])
def test_unsafe_settings_are_refused(host, token, limit, message):
    with pytest.raises(ValueError, match=message):
        requireAccessSettings(host, token, limit)


def test_upload_limit_names_the_file_and_the_limit():
    requireUploadSize("ct.nii.gz", 2**20, 2**20)
    with pytest.raises(ValueError, match=r"File 'ct.nii.gz' is 2.0 MB: uploads are limited to 1 MB"):
        requireUploadSize("ct.nii.gz", 2 * 2**20, 2**20)


def test_page_url_carries_the_token_and_a_reachable_address():
    assert pageUrl("127.0.0.1", 8080, "t" * 16) == "http://127.0.0.1:8080/?secret=" + "t" * 16
    assert pageUrl("0.0.0.0", 8080, "x").startswith("http://127.0.0.1:8080/")
    assert pageUrl("::1", 9, "x").startswith("http://[::1]:9/")
