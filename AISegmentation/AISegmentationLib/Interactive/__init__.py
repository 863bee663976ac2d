"""nnInteractive client: prompt-based AI segmentation against both nnInteractive server generations.

Connection (URL, API key, TLS, timeouts), protocol detection, the legacy HTTP client, the official client for the
current server, prompt geometry, consent, and writing results through the segment editor logic; InteractiveLogic is
the area logic that the facade composes. No Qt here.
"""

from .Connection import ServerSettings
from .Errors import (ConsentRequiredError, InteractiveError, LeaseLostError, ServerReplyError, ServerTimeoutError,
                     ServerUnreachableError, WrongProtocolError)
from .Protocol import ServerInfo, probeServer, testConnection

__all__ = ["ServerSettings", "ServerInfo", "probeServer", "testConnection", "InteractiveError", "ConsentRequiredError",
           "LeaseLostError", "ServerReplyError", "ServerTimeoutError", "ServerUnreachableError", "WrongProtocolError"]
