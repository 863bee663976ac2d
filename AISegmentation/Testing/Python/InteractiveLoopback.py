"""A small loopback HTTP server speaking the legacy nnInteractive protocol, with scripted misbehaviour.

For the error tests: it answers on 127.0.0.1 only, records every request (method, path, headers, body) and, for
prompts, behaves as told: "ok" (a cube around the point), "sleep" (answers late), "error500", "garbage",
"noImage" (the legacy server's HTTP 200 {"status": "error", "message": "No image uploaded"}), "drop" (reads the
request, then closes the connection without a reply - as a server killed mid-request), "notNnInteractive"
(404 everywhere: some other HTTP server), "corruptGzip" (a gzip header, then garbage), "truncatedGzip" (the reply
cut in half), "gzipBomb" (Content-Encoding gzip, 64 MiB once decoded); openapi (a dict) replaces /openapi.json.

FakeCurrentServer speaks the current server's protocol as the official nninteractive-client expects it (lease,
capabilities, packed arrays, changed-box replies) with misbehaving prompt replies: "boxWraps" (a box with negative
indices), "boxPastEnd" (a box past the volume's end, with a (1, 5, 5) array that numpy would broadcast), "broadcast"
(a (1, 1, 1) array for a 5 x 5 x 5 box), "truncated" (the packed array cut after its header) and "badMeta" (the
X-Meta header a JSON list); capabilities (a dict) replaces /capabilities.
"""

import gzip
import io
import json
import struct
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
    def __init__(self, behaviour="ok", delay=0.0, once=False, openapi=None):
        self.behaviour = behaviour
        self.openapi = openapi
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
                self._json(fake.openapi or {"openapi": "3.1.0", "info": {"title": "FakeLegacy", "version": "0.0"},
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
            if behaviour == "corruptGzip":
                return self._send(200, payload[:10] + bytes(range(7, 250)) * 4, "application/octet-stream")
            if behaviour == "truncatedGzip":
                return self._send(200, payload[:len(payload) // 2], "application/octet-stream")
            if behaviour == "gzipBomb":
                payload = gzip.compress(bytes(64 << 20), compresslevel=6)
            self._send(200, payload, "application/octet-stream", {"Content-Encoding": "gzip"})

    return Handler


CURRENT_CAPABILITIES = {
    "supported_interactions": {"points": True, "bbox2d": True, "bbox3d": True, "scribble": True, "lasso": True},
    "channel_mapping": {}, "num_interaction_channels": 7, "supports_initial_label": True,
    "supports_zero_shot_label_refinement": False, "preferred_scribble_thickness": [1, 1, 1],
    "interaction_decay": 0.9, "inference_session_version": "fake 2.6", "license": "test only", "supports_undo": False,
}


class FakeCurrentServer(FakeLegacyServer):
    def __init__(self, behaviour="ok", capabilities=None):
        self.capabilities = capabilities or CURRENT_CAPABILITIES
        super().__init__(behaviour)
        self._server.RequestHandlerClass = _currentHandlerFor(self)


def _packedShape(body):
    """The shape a packed array (the official client's wire format) declares in its header."""
    ndim, nameLength = body[6], body[7]
    return struct.unpack_from(f"<{ndim}q", body, 8 + nameLength)


def _currentHandlerFor(fake):
    from nnInteractive.inference.remote.serialization import pack_array

    class Handler(_handlerFor(fake)):
        def do_GET(self):
            self._record()
            if self.path == "/healthz":
                return self._json({"ok": True})
            if self.path == "/capabilities":
                return self._json(fake.capabilities)
            self._json({"detail": "Not Found"}, 404)

        def do_POST(self):
            body = self._record()
            if self.path == "/claim":
                return self._json({"lease_token": "fake-lease", "idle_timeout_seconds": 600.0,
                                   "liveness_timeout_seconds": 0.0})
            if self.path == "/set_image":
                fake.shape = _packedShape(body)[1:]
                fake.uploads += 1
                return self._json({"original_image_shape": [1, *fake.shape]})
            if self.path == "/add_point_interaction":
                return self._point(json.loads(body)["coordinates"])
            if self.path.startswith("/add_"):
                return self._reply({"ran_prediction": False})
            self._json({})

        def _reply(self, meta, payload=b""):
            self._send(200, payload, "application/octet-stream", {"X-Meta": json.dumps(meta)})

        def _point(self, center):
            behaviour = fake.promptBehaviour()
            box = [[max(c - 2, 0), min(c + 3, size)] for c, size in zip(center, fake.shape)]
            diff = np.ones([hi - lo for lo, hi in box], np.uint8)
            if behaviour == "boxWraps":
                box[0] = [-4, -1]
                diff = np.ones((3,) + diff.shape[1:], np.uint8)
            elif behaviour == "boxPastEnd":
                box[0] = [fake.shape[0] - 2, fake.shape[0] + 3]
                diff = np.ones((1,) + diff.shape[1:], np.uint8)
            elif behaviour == "broadcast":
                diff = np.ones((1, 1, 1), np.uint8)
            payload = pack_array(diff)
            if behaviour == "truncated":
                payload = payload[:8 + payload[7] + 8 * 3 + 2]
            if behaviour == "badMeta":
                return self._send(200, payload, "application/octet-stream", {"X-Meta": "[1, 2]"})
            self._reply({"ran_prediction": True, "bbox": box}, payload)

    return Handler
