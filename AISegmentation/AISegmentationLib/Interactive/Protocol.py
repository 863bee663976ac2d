"""Which nnInteractive server generation answers at a URL, and what it can do (the "Test connection" call)."""

import logging

from .Connection import PROTOCOL_NAMES
from .Errors import InteractiveError, ServerReplyError, WrongProtocolError
from .HttpErrors import fromRequestsError, statusError

# What the legacy server (nninteractive-slicer-server 0.3, nnInteractive 1.0 model) can do; it cannot be asked.
LEGACY_CAPABILITIES = {
    "supportedInteractions": {"points": True, "bbox2d": True, "bbox3d": False, "scribble": True, "lasso": True},
    "initialSegmentation": True, "serverUndo": False, "authentication": False,
}
LEGACY_PATHS = ("/upload_image", "/upload_segment", "/add_point_interaction", "/add_bbox_interaction",
                "/add_scribble_interaction", "/add_lasso_interaction")


class ServerInfo:
    """What Test connection found: protocol ("current" / "legacy"), version text and capabilities."""

    def __init__(self, protocol, version, capabilities, details=None):
        self.protocol = protocol
        self.version = version
        self.capabilities = capabilities
        self.details = details or {}

    @property
    def description(self):
        return PROTOCOL_NAMES[self.protocol]

    def summary(self):
        interactions = ", ".join(k for k, v in self.capabilities["supportedInteractions"].items() if v)
        return f"{self.description}; version {self.version}; prompts: {interactions}"

    def __repr__(self):
        return f"ServerInfo({self.protocol!r}, version={self.version!r})"


def currentCapabilities(raw, origin="the server"):
    """Our capability names from the current server's /capabilities reply (or the official client's attributes).

    Every field is type-checked: ServerReplyError names the first one that is not what the protocol says.
    """
    def refuse(field, expected):
        value = raw.get(field) if isinstance(raw, dict) else raw
        return ServerReplyError(f"The nnInteractive server at {origin} sent capabilities that are not what the "
                                f"protocol says: '{field}' should be {expected}, got {_short(value)}")

    if not isinstance(raw, dict):
        raise refuse("capabilities", "a JSON object")
    interactions = raw.get("supported_interactions")
    if not isinstance(interactions, dict) or not all(
            isinstance(k, str) and isinstance(v, bool) for k, v in interactions.items()):
        raise refuse("supported_interactions", "an object of interaction names and true/false")
    flags = {}
    for field, default in (("supports_initial_label", True), ("supports_undo", False)):
        flags[field] = raw.get(field, default) if raw.get(field) is not None else default
        if not isinstance(flags[field], bool):
            raise refuse(field, "true or false")
    patchSize = raw.get("patch_size")
    if patchSize is not None and not (isinstance(patchSize, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in patchSize)):
        logging.warning("nnInteractive server at %s: ignoring its patch_size %s", origin, _short(patchSize))
        patchSize = None
    return {
        "supportedInteractions": dict(interactions),
        "initialSegmentation": flags["supports_initial_label"],
        "serverUndo": flags["supports_undo"],
        "authentication": None,
        "patchSize": list(patchSize) if patchSize is not None else None,
        "license": _text(raw.get("license"), None, 300),
    }


def _short(value):
    text = repr(value)
    return text[:80] + ("..." if len(text) > 80 else "")


def _get(settings, path, what):
    import requests

    try:
        return requests.get(settings.url + path, headers=settings.authorizationHeaders(), verify=settings.verifyTls,
                            timeout=(settings.connectTimeout, settings.readTimeout), allow_redirects=False)
    except requests.exceptions.RequestException as error:
        raise fromRequestsError(error, settings, what) from None


def _json(response):
    try:
        return response.json()
    except ValueError:
        return None


def probeServer(settings):
    """ServerInfo of the server at settings.url; raises InteractiveError with a clear message otherwise.

    The current generation answers GET /healthz with {"ok": true} and GET /capabilities (with the API key); the
    legacy one publishes its endpoints in /openapi.json. With settings.protocol set, only that one is tried.
    """
    errors = []
    order = ("current", "legacy") if settings.protocol == "auto" else (settings.protocol,)
    for protocol in order:
        try:
            return _probeCurrent(settings) if protocol == "current" else _probeLegacy(settings)
        except WrongProtocolError as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    raise WrongProtocolError(
        f"The server at {settings.origin} answers HTTP but is not an nnInteractive server: it has neither the current "
        f"server's /healthz and /capabilities nor the legacy server's /upload_image. Check the URL and port.")


def _probeCurrent(settings):
    health = _get(settings, "/healthz", "health check")
    data = _json(health) if health.status_code == 200 else None
    if not isinstance(data, dict) or data.get("ok") is not True:
        raise WrongProtocolError(f"The server at {settings.origin} is not a current nnInteractive server "
                                 f"(GET /healthz answered HTTP {health.status_code}).")
    response = _get(settings, "/capabilities", "capabilities")
    if response.status_code != 200:
        raise statusError(settings, "capabilities", response.status_code, response.text)
    raw = _json(response)
    if not isinstance(raw, dict) or "supported_interactions" not in raw:
        raise ServerReplyError(f"The nnInteractive server at {settings.origin} sent capabilities that are not "
                               f"what the protocol says: {response.text[:200]!r}")
    capabilities = currentCapabilities(raw, settings.origin)
    capabilities["authentication"] = settings.hasApiKey
    version = f"inference session {_text(raw.get('inference_session_version'))}"
    logging.info("nnInteractive server at %s: current protocol, %s", settings.origin, version)
    return ServerInfo("current", version, capabilities, raw)


def _text(value, default="unknown", limit=80):
    """A version or title from a reply: strings and numbers only, single line, short."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return default
    text = " ".join(str(value).split())[:limit]
    return text or default


def _probeLegacy(settings):
    response = _get(settings, "/openapi.json", "API description")
    spec = _json(response) if response.status_code == 200 else None
    paths = spec.get("paths") if isinstance(spec, dict) else None
    if not isinstance(paths, dict) or not all(path in paths for path in LEGACY_PATHS):
        raise WrongProtocolError(f"The server at {settings.origin} is not a legacy nnInteractive server "
                                 f"(no /upload_image endpoint in /openapi.json).")
    info = spec.get("info") if isinstance(spec.get("info"), dict) else {}
    version = f"{_text(info.get('title'), 'FastAPI')} {_text(info.get('version'))}"
    logging.info("nnInteractive server at %s: legacy protocol (%s)", settings.origin, version)
    return ServerInfo("legacy", version, dict(LEGACY_CAPABILITIES), {"paths": sorted(paths)})


def testConnection(settings):
    """(ok, message, ServerInfo or None) for a "Test connection" button: never raises."""
    try:
        info = probeServer(settings)
        return True, f"Connected to {settings.origin}: {info.summary()}", info
    except InteractiveError as error:
        return False, str(error), None
    except Exception as error:  # a reply no check foresaw: report it, never raise from a test button
        logging.debug("Connection test of %s failed", settings.origin, exc_info=True)
        return False, (f"The nnInteractive server at {settings.origin} sent a reply that is not what the protocol "
                       f"says ({type(error).__name__}: {_short(str(error))})"), None
