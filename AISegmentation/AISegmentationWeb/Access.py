"""Who may reach the page: loopback by default; any other address only with a token, which the page requires.

The token is wslink's authentication key: the browser sends it (the ``secret`` URL parameter) when it opens the
websocket, and the server refuses a connection without it. Uploads are limited in size.
"""

import ipaddress
import secrets
import socket

DEFAULT_MAX_UPLOAD_MB = 1024


def isLoopback(host):
    """True when host (name or address) only resolves to loopback addresses."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
        except OSError:
            return False
        return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def requireAccessSettings(host, token, maxUploadMb):
    """The token to use (a random one on loopback when none is given); ValueError for a host other than loopback
    without a token, a token too short to guess safely, or an upload limit that is not a positive number."""
    if token and len(token) < 16:
        raise ValueError("--token must have at least 16 characters")
    if not isLoopback(host) and not token:
        raise ValueError(f"--host {host} opens the page beyond this computer: give --token (at least 16 characters); "
                         "the page then requires it")
    if not maxUploadMb > 0:
        raise ValueError(f"--max-upload-mb must be a positive number of megabytes, got {maxUploadMb}")
    return token or secrets.token_urlsafe(18)


def pageUrl(host, port, token):
    shown = "127.0.0.1" if host in ("localhost", "0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?secret={token}"


def requireUploadSize(name, size, maxBytes):
    """ValueError when an uploaded file is larger than the limit."""
    if size > maxBytes:
        raise ValueError(f"File '{name}' is {size / 2**20:.1f} MB: uploads are limited to {maxBytes / 2**20:.0f} MB "
                         "(--max-upload-mb)")
