"""Clear messages for HTTP failures, from requests (legacy client, connection test) or httpx (official client)."""

import json
import logging

from .Errors import LeaseLostError, ServerReplyError, ServerTimeoutError, ServerUnreachableError, WrongProtocolError

MAX_DETAIL = 300


def _detail(text):
    """A short, single-line server message: FastAPI's {"detail": ...} when present, else the text itself."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and data.get("detail") is not None:
            text = data["detail"] if isinstance(data["detail"], str) else json.dumps(data["detail"])
        elif isinstance(data, dict) and data.get("message"):
            text = str(data["message"])
    except (TypeError, ValueError):
        pass
    text = " ".join(str(text or "").split())
    return text[:MAX_DETAIL] + ("..." if len(text) > MAX_DETAIL else "")


def statusError(settings, what, statusCode, text):
    """The error for an HTTP error status of the request `what`."""
    detail = _detail(text)
    suffix = f": {detail}" if detail else ""
    if statusCode == 401:
        keyState = "an API key that it rejected" if settings.hasApiKey else "no API key"
        return ServerReplyError(f"The nnInteractive server at {settings.origin} requires an API key; this connection "
                                f"sent {keyState} (HTTP 401{suffix}). Enter the key the server was started with.")
    if statusCode == 403:
        return ServerReplyError(f"The nnInteractive server at {settings.origin} refused '{what}' (HTTP 403{suffix})")
    if statusCode in (404, 405):
        return WrongProtocolError(
            f"The server at {settings.origin} does not offer '{what}' (HTTP {statusCode}): it is not the "
            f"nnInteractive server generation this connection expects. Use 'auto' protocol detection or check the "
            f"URL.")
    if statusCode == 410:
        return LeaseLostError(
            f"The nnInteractive server at {settings.origin} ended this session (idle timeout or server restart)"
            f"{suffix}. The next prompt reconnects and sends the image again.")
    if statusCode == 503:
        return ServerReplyError(f"The nnInteractive server at {settings.origin} is busy (HTTP 503{suffix}); "
                                f"wait and try again, or ask its operator to allow more sessions.")
    return ServerReplyError(f"The nnInteractive server at {settings.origin} failed on '{what}' "
                            f"(HTTP {statusCode}{suffix})")


def _connectionMessage(settings, what, reason):
    return (f"Cannot reach the nnInteractive server at {settings.origin} for '{what}' ({reason}). Is the server "
            f"running and the URL right? Start it with 'nninteractive-server --host 127.0.0.1 --port 1527' or "
            f"'nninteractive-slicer-server --port 1527'.")


def _droppedMessage(settings, what):
    return (f"The connection to the nnInteractive server at {settings.origin} broke during '{what}': the server "
            f"closed it without a reply (it stopped, crashed or ran out of memory). Check the server's log.")


def fromRequestsError(error, settings, what, sent=True):
    """The InteractiveError for a requests exception raised by the request `what`."""
    import requests

    logging.debug("nnInteractive request '%s' to %s failed: %r", what, settings.origin, error)
    if isinstance(error, requests.exceptions.SSLError):
        return _tlsError(settings, error)
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return _connectTimeout(settings)
    if isinstance(error, requests.exceptions.ReadTimeout):
        return _readTimeout(settings, what)
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return ServerReplyError(f"The nnInteractive server at {settings.origin} sent a reply to '{what}' whose "
                                f"compression is corrupt ({_reason(error)}). Nothing was changed.")
    if isinstance(error, requests.exceptions.ConnectionError):
        if _isRefused(error) or not sent:
            return ServerUnreachableError(_connectionMessage(settings, what, _reason(error)))
        return ServerUnreachableError(_droppedMessage(settings, what))
    return ServerReplyError(f"Request '{what}' to the nnInteractive server at {settings.origin} failed: "
                            f"{_reason(error)}")


def fromHttpxError(error, settings, what, timeout=None):
    """The InteractiveError for an httpx exception (raised inside the official client) of the request `what`."""
    import httpx

    logging.debug("nnInteractive request '%s' to %s failed: %r", what, settings.origin, error)
    if isinstance(error, httpx.HTTPStatusError):
        return statusError(settings, what, error.response.status_code, error.response.text)
    if isinstance(error, httpx.ConnectTimeout):
        return _connectTimeout(settings)
    if isinstance(error, (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)):
        return _readTimeout(settings, what, timeout)
    if isinstance(error, httpx.ConnectError):
        if "CERTIFICATE_VERIFY_FAILED" in str(error) or "SSL" in str(error):
            return _tlsError(settings, error)
        return ServerUnreachableError(_connectionMessage(settings, what, _reason(error)))
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return ServerUnreachableError(_droppedMessage(settings, what))
    return ServerReplyError(f"Request '{what}' to the nnInteractive server at {settings.origin} failed: "
                            f"{_reason(error)}")


def _tlsError(settings, error):
    return ServerUnreachableError(
        f"The TLS certificate of {settings.origin} could not be verified ({_reason(error)}). Use the server's correct "
        f"https address, or install its certificate authority; verification stays on.")


def _connectTimeout(settings):
    return ServerTimeoutError(f"The nnInteractive server at {settings.origin} did not accept a connection within "
                              f"{settings.connectTimeout:g} s (connect timeout). Check the URL and the network.")


def _readTimeout(settings, what, timeout=None):
    seconds = timeout or settings.readTimeout
    return ServerTimeoutError(f"The nnInteractive server at {settings.origin} did not answer '{what}' within "
                              f"{seconds:g} s (read timeout). It may be overloaded; try again or raise the timeout.")


def _isRefused(error):
    text = repr(error)
    return "Connection refused" in text or "Errno 111" in text or "NewConnectionError" in text


def _reason(error):
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:MAX_DETAIL]
