"""The web page's server under attack, on loopback: a real server (.venv-web) started by the test and a raw websocket
client (WebsocketProbe.py, run in .venv-web) that sends what a browser never would.

Without the token: unfinished messages, text frames, silence. With it: a 2 GiB chunk header, an upload above
--max-upload-mb, a FIFO typed as a path, Save with nothing loaded, nnInteractive addresses and keys.
"""

import contextlib
import http.server
import json
import os
import subprocess
import threading
import time

import pytest
from DevTools.WebPage import REPOSITORY, URL_LINE_PREFIX, ensureWebEnvironment, stopServer

pytestmark = pytest.mark.slow

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "WebsocketProbe.py")
OPERATOR_KEY = "operator-key-0123456789"


@contextlib.contextmanager
def pageServer(tmp_path, arguments=(), environment=None):
    """(url, pid, log path) of `python -m AISegmentationWeb --no-sample` on 127.0.0.1; stopped at the end."""
    python = ensureWebEnvironment()
    logPath = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=os.path.join(REPOSITORY, "AISegmentation"), PYTHONUNBUFFERED="1",
               **(environment or {}))
    with open(logPath, "w", encoding="utf-8") as log:
        process = subprocess.Popen([python, "-m", "AISegmentationWeb", "--host", "127.0.0.1", "--no-sample",
                                    "--max-upload-mb", "1", *arguments], cwd=REPOSITORY, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            lines = [line for line in logPath.read_text().splitlines() if line.startswith(URL_LINE_PREFIX)]
            if lines:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"The web server did not start:\n{logPath.read_text()[-3000:]}")
        yield lines[0][len(URL_LINE_PREFIX):].strip(), process.pid, logPath
    finally:
        stopServer(process)


def probe(*arguments, timeout=120):
    result = subprocess.run([ensureWebEnvironment(), PROBE, *map(str, arguments)], capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with pageServer(tmp_path_factory.mktemp("web-limits")) as running:
        yield running


def grownMb(outcome, key="rssMb"):
    return outcome["after"][key] - outcome["before"][key]


def test_unfinished_messages_without_the_token_are_not_kept(server):
    url, pid, _ = server
    outcome = probe("flood", url, pid, 150000)
    print("150 000 unfinished 512-byte messages without the token:", outcome)
    assert outcome["closed"] and grownMb(outcome) < 20, outcome


def test_text_frames_close_the_connection_and_nothing_of_them_is_logged(server):
    url, pid, logPath = server
    before = logPath.stat().st_size
    outcome = probe("text", url, pid, 12, 8)
    grown = logPath.stat().st_size - before
    print(f"12 text frames of 8 MB without the token: log +{grown} bytes", outcome)
    assert outcome["closed"] and grown < 4096, (grown, outcome)
    assert "AAAAAAAA" not in logPath.read_text()


def test_a_connection_that_never_authenticates_is_closed(server):
    url, _, _ = server
    outcome = probe("silent", url, 20)
    assert outcome["closed"] and outcome["seconds"] < 15, outcome


def test_a_chunk_header_announcing_2_gib_is_refused_before_allocation(server):
    url, pid, _ = server
    outcome = probe("header", url, pid)
    print("One chunk announcing 2 GiB (with the token):", outcome)
    assert outcome["closed"] and outcome["code"] == 1009, outcome
    assert grownMb(outcome, "vmMb") < 256 and grownMb(outcome) < 20, outcome


def test_an_upload_above_the_limit_is_refused_at_its_first_chunk(server):
    url, pid, _ = server
    outcome = probe("upload", url, pid, 200)
    print("A 200 MB message with --max-upload-mb 1:", outcome)
    assert outcome["closed"] and outcome["code"] == 1009 and grownMb(outcome) < 50, outcome


def test_a_fifo_typed_as_a_path_blocks_no_other_user(server, tmp_path):
    url, _, _ = server
    fifo = str(tmp_path / "pipe.nrrd")
    os.mkfifo(fifo)
    try:
        outcome = probe("fifo", url, fifo, timeout=90)
    finally:  # a server stuck opening the FIFO (the old behaviour) is released
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    print("A FIFO loaded by one client; another client's hello:", outcome)
    assert outcome["hello"] and outcome["helloSeconds"] < 3, outcome
    assert "FIFO" in outcome["error"], outcome


def test_save_with_nothing_loaded_is_a_message_not_a_traceback(server):
    url, _, _ = server
    outcome = probe("call", url, "downloadSegmentation")
    assert "error" not in outcome["reply"] and outcome["reply"].get("result") is None, outcome
    assert outcome["error"] == "Load a volume first", outcome


class HeaderRecorder(http.server.BaseHTTPRequestHandler):
    """A loopback listener that records each request's Authorization header and answers 404."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        self.send_error(404)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *_):
        pass


@contextlib.contextmanager
def listeners(count):
    servers = []
    try:
        for _ in range(count):
            listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HeaderRecorder)
            listener.requests = []
            threading.Thread(target=listener.serve_forever, daemon=True).start()
            servers.append(listener)
        yield servers
    finally:
        for listener in servers:
            listener.shutdown()
            listener.server_close()


def test_the_operators_api_key_goes_only_to_its_own_address(tmp_path):
    with listeners(3) as (owner, other, unlisted):
        urls = [f"http://127.0.0.1:{listener.server_address[1]}" for listener in (owner, other, unlisted)]
        arguments = ["--interactive-server", urls[0], "--interactive-server", urls[1]]
        with pageServer(tmp_path, arguments, {"AISEGMENTATION_INTERACTIVE_API_KEY": OPERATOR_KEY}) as (url, _, _):
            probe("call", url, "interactiveConnect", json.dumps([urls[0], ""]))
            probe("call", url, "interactiveConnect", json.dumps([urls[1], ""]))
            refused = probe("call", url, "interactiveConnect", json.dumps([urls[2], ""]))
            probe("call", url, "interactiveConnect", json.dumps([urls[1], "a-key-of-the-page-user"]))
    assert owner.requests and all(key == f"Bearer {OPERATOR_KEY}" for _, key in owner.requests), owner.requests
    assert other.requests and OPERATOR_KEY not in str(other.requests), other.requests
    assert "Bearer a-key-of-the-page-user" in {key for _, key in other.requests}, other.requests
    assert unlisted.requests == [] and "not one this page may reach" in refused["error"], refused


def test_wslink_is_shaped_as_the_guards_expect():
    """Fails when an update of wslink changes what WebsocketGuard relies on (then review the guards)."""
    script = (
        "from AISegmentationWeb.WebsocketGuard import WSLINK_VERSION, requireWslinkShape\n"
        "import wslink; requireWslinkShape(); print(wslink.__version__, WSLINK_VERSION)\n"
        "from wslink.backends.aiohttp import AioHttpWsHandler\n"
        "async def onClose(self, client_id): pass\n"
        "AioHttpWsHandler.onClose = onClose\n"
        "try:\n    requireWslinkShape()\nexcept RuntimeError as error:\n    print('detected:', error)\n")
    environment = dict(os.environ, PYTHONPATH=os.path.join(REPOSITORY, "AISegmentation"))
    result = subprocess.run([ensureWebEnvironment(), "-c", script], capture_output=True, text=True, check=False,
                            env=environment, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    versions, detected = result.stdout.splitlines()[:2]
    assert versions.split()[0] == versions.split()[1], versions
    assert "onClose lacks `del self.unchunkers[client_id]`" in detected, detected
