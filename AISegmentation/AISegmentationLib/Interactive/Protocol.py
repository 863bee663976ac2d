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


def currentCapabilities(raw):
    """Our capability names from the current server's /capabilities reply (or the official client's attributes)."""
    return {
        "supportedInteractions": {k: bool(v) for k, v in dict(raw.get("supported_interactions") or {}).items()},
        "initialSegmentation": bool(raw.get("supports_initial_label", True)),
        "serverUndo": bool(raw.get("supports_undo", False)),
        "authentication": None,
        "patchSize": raw.get("patch_size"),
        "license": raw.get("license"),
    }


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
    capabilities = currentCapabilities(raw)
    capabilities["authentication"] = settings.hasApiKey
    version = f"inference session {raw.get('inference_session_version', 'unknown')}"
    logging.info("nnInteractive server at %s: current protocol, %s", settings.origin, version)
    return ServerInfo("current", version, capabilities, raw)


def _probeLegacy(settings):
    response = _get(settings, "/openapi.json", "API description")
    spec = _json(response) if response.status_code == 200 else None
    paths = set((spec or {}).get("paths", {})) if isinstance(spec, dict) else set()
    if not all(path in paths for path in LEGACY_PATHS):
        raise WrongProtocolError(f"The server at {settings.origin} is not a legacy nnInteractive server "
                                 f"(no /upload_image endpoint in /openapi.json).")
    info = spec.get("info") or {}
    version = f"{info.get('title', 'FastAPI')} {info.get('version', 'unknown')}"
    logging.info("nnInteractive server at %s: legacy protocol (%s)", settings.origin, version)
    return ServerInfo("legacy", version, dict(LEGACY_CAPABILITIES), {"paths": sorted(paths)})


def testConnection(settings):
    """(ok, message, ServerInfo or None) for a "Test connection" button: never raises for server problems."""
    try:
        info = probeServer(settings)
    except InteractiveError as error:
        return False, str(error), None
    return True, f"Connected to {settings.origin}: {info.summary()}", info
