"""A small loopback HTTP server speaking the legacy nnInteractive protocol, with scripted misbehaviour.

For the error tests: it answers on 127.0.0.1 only, records every request (method, path, headers, body) and, for
prompts, behaves as told: "ok" (a cube around the point), "sleep" (answers late), "error500", "garbage",
"noImage" (the legacy server's HTTP 200 {"status": "error", "message": "No image uploaded"}), "drop" (reads the
request, then closes the connection without a reply - as a server killed mid-request), or "notNnInteractive"
(404 everywhere: some other HTTP server).
"""

import gzip
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

LEGACY_PATHS = ("/upload_image", "/upload_segment", "/add_point_interaction", "/add_bbox_interaction",
                "/add_scribble_interaction", "/add_lasso_interaction")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, clientAddress):
        pass  # the "drop" behaviour closes sockets under the handler's feet on purpose


class FakeLegacyServer:
    def __init__(self, behaviour="ok", delay=0.0, once=False):
        self.behaviour = behaviour
        self.delay = delay
        self.once = once
        self.requests = []
        self.shape = None
        self.uploads = 0
        self._server = _QuietServer(("127.0.0.1", 0), _handlerFor(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def promptBehaviour(self):
        behaviour = self.behaviour
        if self.once:
            self.behaviour = "ok"
        return behaviour

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def _handlerFor(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _record(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append((self.command, self.path, dict(self.headers), body))
            return body

        def _send(self, status, body, contentType="application/json", headers=None):
            self.send_response(status)
            self.send_header("Content-Type", contentType)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, data, status=200):
            self._send(status, json.dumps(data).encode())

        def do_GET(self):
            self._record()
            if self.path == "/openapi.json" and fake.behaviour != "notNnInteractive":
                self._json({"openapi": "3.1.0", "info": {"title": "FakeLegacy", "version": "0.0"},
                            "paths": {path: {} for path in LEGACY_PATHS}})
            else:
                self._json({"detail": "Not Found"}, 404)

        def do_POST(self):
            body = self._record()
            if fake.behaviour == "notNnInteractive":
                return self._json({"detail": "Not Found"}, 404)
            if self.path == "/upload_image":
                fake.shape = np.load(io.BytesIO(body[body.index(b"\x93NUMPY"):])).shape
                fake.uploads += 1
                return self._json({"status": "ok"})
            if self.path == "/upload_segment":
                return self._json({"status": "ok"})
            self._prompt(body)

        def _prompt(self, body):
            behaviour = fake.promptBehaviour()
            if behaviour == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if behaviour == "sleep":
                time.sleep(fake.delay)
            if behaviour == "error500":
                return self._send(500, b"Internal Server Error", "text/plain")
            if behaviour == "garbage":
                return self._send(200, b"<html>surprise</html>", "application/octet-stream")
            if behaviour == "noImage" or fake.shape is None:
                fake.shape = None
                return self._json({"status": "error", "message": "No image uploaded"})
            mask = np.zeros(fake.shape, bool)
            center = json.loads(body).get("voxel_coord") if self.path == "/add_point_interaction" else None
            center = center or [s // 2 for s in fake.shape]
            mask[tuple(slice(max(c - 2, 0), c + 3) for c in center)] = True
            payload = gzip.compress(np.packbits(mask, axis=None).tobytes())
            self._send(200, payload, "application/octet-stream", {"Content-Encoding": "gzip"})

    return Handler
