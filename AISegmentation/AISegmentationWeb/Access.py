"""Who may reach the page: loopback by default; any other address only with a token, which the page requires.

The token is wslink's authentication key: the browser sends it (the ``secret`` URL parameter) when it opens the
websocket, and the server refuses a connection without it (compared in constant time, see WebsocketLimits). The
token comes from a file (--token-file) or the environment (AISEGMENTATION_WEB_TOKEN), never from the command line,
where every local user sees it (ps). Uploads are limited in size.
"""

import ipaddress
import os
import re
import secrets
import socket

DEFAULT_MAX_UPLOAD_MB = 1024
TOKEN_ENVIRONMENT = "AISEGMENTATION_WEB_TOKEN"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,256}")  # URL-safe (it travels in the page's URL), 16 to 256
MIN_DISTINCT_TOKEN_CHARACTERS = 8


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


def readToken(tokenFile=None, environ=None):
    """The token from --token-file (its first line, stripped) or else $AISEGMENTATION_WEB_TOKEN; None without
    either; ValueError when the file cannot be read."""
    if tokenFile:
        try:
            with open(tokenFile, encoding="utf-8") as file:
                return file.readline().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"--token-file {tokenFile}: {error}") from None
    value = (os.environ if environ is None else environ).get(TOKEN_ENVIRONMENT)
    return value if value is None else value.strip()


def requireToken(token):
    """ValueError unless the token is 16 to 256 URL-safe characters with at least 8 different ones."""
    if not TOKEN_PATTERN.fullmatch(token) or len(set(token)) < MIN_DISTINCT_TOKEN_CHARACTERS:
        raise ValueError("the token must be 16 to 256 characters among A-Z a-z 0-9 . _ ~ -, with at least "
                         f"{MIN_DISTINCT_TOKEN_CHARACTERS} different ones (e.g. openssl rand -hex 16 > FILE)")


def requireAccessSettings(host, token, maxUploadMb):
    """The token to use (a random one on loopback when none is given); ValueError for a host other than loopback
    without a token, a blank, short or guessable token, or an upload limit that is not a positive number."""
    if token is not None:
        requireToken(token)
    if not isLoopback(host) and not token:
        raise ValueError(f"--host {host} opens the page beyond this computer: give a token (--token-file FILE or "
                         f"${TOKEN_ENVIRONMENT}); the page then requires it")
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
