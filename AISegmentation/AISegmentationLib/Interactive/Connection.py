"""Where the nnInteractive server is and how to talk to it: URL, API key, TLS verification, timeouts.

The API key lives only in this object's memory: it is never part of repr(), never logged, never stored in the MRML
scene, and it leaves the process only as the ``Authorization: Bearer`` header of requests to the server.
"""

import urllib.parse

from ..Addresses import isLoopbackHost, splitHttpUrl

PROTOCOLS = ("auto", "current", "legacy")
PROTOCOL_NAMES = {
    "current": "nninteractive-server (nnInteractive >= 2.5: leases, API key, changed-box replies)",
    "legacy": "nninteractive-slicer-server (legacy HTTP API, whole-volume replies, no authentication)",
}


def normalizeUrl(url):
    """The server's base URL without a trailing slash; ValueError for anything that is not http(s)://host[:port]."""
    text = (url or "").strip()
    if not text:
        raise ValueError("No nnInteractive server URL given (for example http://127.0.0.1:1527)")
    if "://" not in text:
        text = "http://" + text
    parsed = splitHttpUrl(text, f"'{url}' is not a server URL; use http(s)://host:port, for example "
                                f"http://127.0.0.1:1527", "Put the API key in the API key field, not in the server URL")
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


class ServerSettings:
    """Connection settings of one nnInteractive server. Timeouts in seconds."""

    def __init__(self, url, apiKey=None, protocol="auto", connectTimeout=5.0, readTimeout=120.0,
                 uploadTimeout=600.0, verifyTls=True):
        if protocol not in PROTOCOLS:
            raise ValueError(f"Unknown nnInteractive protocol '{protocol}'; choose one of: {', '.join(PROTOCOLS)}")
        for name, value in (("connect", connectTimeout), ("read", readTimeout), ("upload", uploadTimeout)):
            if not value or value <= 0:
                raise ValueError(f"The {name} timeout must be a positive number of seconds, got {value}")
        self.url = normalizeUrl(url)
        self.protocol = protocol
        self.connectTimeout = float(connectTimeout)
        self.readTimeout = float(readTimeout)
        self.uploadTimeout = float(uploadTimeout)
        self.verifyTls = bool(verifyTls)
        self.__apiKey = (apiKey or "").strip() or None

    @property
    def apiKey(self):
        return self.__apiKey

    @property
    def hasApiKey(self):
        return self.__apiKey is not None

    @property
    def host(self):
        return urllib.parse.urlsplit(self.url).hostname

    @property
    def origin(self):
        """scheme://host:port - the identity of the server for consent and messages (no path, no key)."""
        parsed = urllib.parse.urlsplit(self.url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
        return f"{parsed.scheme}://{host}:{port}"

    @property
    def isLocal(self):
        return isLoopbackHost(self.host)

    def authorizationHeaders(self):
        return {"Authorization": f"Bearer {self.__apiKey}"} if self.__apiKey else {}

    def __repr__(self):
        key = "set" if self.__apiKey else "none"
        return f"ServerSettings(url={self.url!r}, protocol={self.protocol!r}, apiKey={key})"
