"""Quick tests of the web front end's access rules (no server, no browser): loopback, tokens, upload limits, the
websocket's message limits, the nnInteractive allow-list. The real server under attack: test_web_limits.py."""

import msgpack
import pytest
from AISegmentationWeb.__main__ import main
from AISegmentationWeb.Access import isLoopback, pageUrl, readToken, requireAccessSettings, requireUploadSize
from AISegmentationWeb.InteractiveAccess import InteractiveServers
from AISegmentationWeb.WebsocketLimits import PRE_AUTH_MESSAGE_BYTES, ChunkAssembler, Refused, tokensEqual


@pytest.mark.parametrize("host, expected", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.20", False), ("", False)])
def test_loopback_hosts(host, expected):
    assert isLoopback(host) is expected


def test_loopback_gets_a_random_token_and_keeps_a_given_one():
    first, second = requireAccessSettings("127.0.0.1", None, 10), requireAccessSettings("127.0.0.1", None, 10)
    assert first != second and len(first) >= 16
    assert requireAccessSettings("0.0.0.0", "a-token-of-twenty-chars", 10) == "a-token-of-twenty-chars"


@pytest.mark.parametrize("host, token, limit, message", [
    ("0.0.0.0", None, 10, "give a token"),
    ("10.0.0.5", "", 10, "the token must be"),
    ("0.0.0.0", " " * 16, 10, "the token must be"),
    ("0.0.0.0", "a" * 16, 10, "at least 8 different"),
    ("0.0.0.0", "0123456789abcdef 0123", 10, "the token must be"),
    ("127.0.0.1", "short", 10, "the token must be"),
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


def test_the_token_comes_from_a_file_or_the_environment_never_the_command_line(tmp_path, capsys):
    tokenFile = tmp_path / "token"
    tokenFile.write_text("0123456789abcdef-token\n")
    assert readToken(str(tokenFile), {}) == "0123456789abcdef-token"
    assert readToken(None, {"AISEGMENTATION_WEB_TOKEN": "from-the-environment-1"}) == "from-the-environment-1"
    assert readToken(None, {}) is None
    with pytest.raises(ValueError, match="--token-file"):
        readToken(str(tmp_path / "missing"), {})
    assert main(["--token", "0123456789abcdef-token"]) == 2
    assert "visible to every user of this computer (ps)" in capsys.readouterr().err
    tokenFile.write_text(" " * 16)
    assert main(["--host", "0.0.0.0", "--token-file", str(tokenFile)]) == 2
    assert "the token must be" in capsys.readouterr().err


def test_tokens_are_compared_in_constant_time_and_only_as_strings():
    assert tokensEqual("0123456789abcdef", "0123456789abcdef")
    assert not tokensEqual("0123456789abcdeF", "0123456789abcdef")
    assert not tokensEqual(None, "0123456789abcdef") and not tokensEqual(["x"], "x") and not tokensEqual("", "")


def chunk(messageId, offset, total, content=b""):
    return b"".join(v.to_bytes(4, "little") for v in (messageId, offset, total)) + content


def test_before_the_token_one_small_unfinished_message_at_most():
    assembler = ChunkAssembler(2**20)
    assert assembler.add(chunk(1, 0, 512, b"x")) is None
    with pytest.raises(Refused, match="more than 1 unfinished messages before the token"):
        assembler.add(chunk(2, 0, 512, b"x"))
    with pytest.raises(Refused, match=f"the limit is {PRE_AUTH_MESSAGE_BYTES} bytes before the token"):
        ChunkAssembler(2**20).add(chunk(3, 0, PRE_AUTH_MESSAGE_BYTES + 1))
    with pytest.raises(Refused, match="shorter than its 12-byte header"):
        ChunkAssembler(2**20).add(b"\0\0")


def test_after_the_token_the_upload_limit_holds_before_anything_is_allocated():
    assembler = ChunkAssembler(2**20)
    assembler.authenticate()
    with pytest.raises(Refused, match="announced as 2147483647 bytes; the limit is 1048576 bytes") as refusal:
        assembler.add(chunk(1, 0, 2**31 - 1, b"xy"))
    assert refusal.value.closeCode == 1009 and assembler.pendingBytes == 0
    data = msgpack.packb({"wslink": "1.0", "id": "rpc:c0:1", "method": "trame.trigger", "args": []})
    assert assembler.add(chunk(2, 0, len(data), data[:5])) is None
    with pytest.raises(Refused, match="a chunk at offset 9"):  # out of order: refused and forgotten
        assembler.add(chunk(2, 9, len(data), data[9:]))
    assert assembler.pendingBytes == 0
    assembler.add(chunk(3, 0, len(data), data[:5]))
    assert assembler.add(chunk(3, 5, len(data), data[5:]))["method"] == "trame.trigger"
    with pytest.raises(Refused, match="not an RPC"):
        assembler.add(chunk(4, 0, 1, msgpack.packb(1)))


def test_nninteractive_addresses_are_the_operators_and_the_key_belongs_to_the_first():
    servers = InteractiveServers(["http://127.0.0.1:1527/", "gpu-box:8000"], operatorKey="operator-key")
    assert servers.settingsFor("http://127.0.0.1:1527") == ("http://127.0.0.1:1527", "operator-key")
    assert servers.settingsFor("http://gpu-box:8000") == ("http://gpu-box:8000", None)
    assert servers.settingsFor("http://gpu-box:8000", " own-key ") == ("http://gpu-box:8000", "own-key")
    with pytest.raises(ValueError, match="not one this page may reach; the operator allows"):
        servers.settingsFor("http://127.0.0.1:9999")
    assert InteractiveServers().settingsFor("127.0.0.1:1527") == ("http://127.0.0.1:1527", None)
