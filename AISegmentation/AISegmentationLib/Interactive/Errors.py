"""Errors of the nnInteractive client, each with a message meant for the user (what happened, what to do)."""


class InteractiveError(ValueError):
    """A prompt, connection or server problem. Nothing was written into the scene when this is raised."""


class ServerUnreachableError(InteractiveError):
    """No connection could be made (server not running, wrong URL or port, TLS verification failed)."""


class ServerTimeoutError(InteractiveError):
    """The server did not answer within the connect or read timeout."""


class ServerReplyError(InteractiveError):
    """The server answered with an HTTP error, an error message or a reply that is not what the protocol says."""


class WrongProtocolError(InteractiveError):
    """The URL answers HTTP but is not an nnInteractive server of a known generation."""


class LeaseLostError(InteractiveError):
    """The current server ended this client's session (idle timeout, restart); the next call reconnects."""


class ConsentRequiredError(InteractiveError):
    """The image would go to another machine and the user has not agreed to that for this server."""
