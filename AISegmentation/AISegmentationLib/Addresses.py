"""Network addresses shared by every client of a server (nnInteractive, DICOMweb, a Dask scheduler): an http(s)
URL check and the loopback test (what never leaves this machine needs no consent and no TLS)."""

import ipaddress
import urllib.parse


def splitHttpUrl(text, notHttpMessage, credentialsMessage):
    """urlsplit of an http(s)://host[:port][/path] URL; ValueError(notHttpMessage) for another scheme or no host,
    ValueError(credentialsMessage) for credentials in it, and for an invalid port."""
    parsed = urllib.parse.urlsplit(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(notHttpMessage)
    if parsed.username or parsed.password:
        raise ValueError(credentialsMessage)
    try:
        parsed.port
    except ValueError:
        raise ValueError(f"'{text}' has an invalid port number") from None
    return parsed


def isLoopbackHost(host):
    """True for this machine's own addresses (localhost, 127.0.0.0/8, ::1)."""
    if (host or "").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
