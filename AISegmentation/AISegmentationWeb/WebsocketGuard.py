"""wslink's websocket handler under our limits (WebsocketLimits): installed when trame binds the server.

Relies on wslink 2.6 (WSLINK_VERSION): its aiohttp backend's AioHttpWsHandler, whose handleWsRequest calls
onConnect, then onMessage for every frame, then onClose; handleSystemMessage answers wslink.hello through
validateToken and marks the client authenticated; the per-connection reassemblers live in ``unchunkers``.
requireWslinkShape() checks exactly this at startup (the server refuses to start otherwise) and in the tests.
Our subclass replaces: the reassembler (limits on size, count, order), text frames (closed, never logged), the
token comparison (constant time), an authentication deadline and a cap on connections waiting to authenticate.
Refusals are logged as one line of sizes and counts; the content of a message is never logged.
"""

import asyncio
import inspect
import logging

import wslink
from wslink import chunking
from wslink.backends.aiohttp import AioHttpWsHandler

from .WebsocketLimits import (AUTH_SECONDS, HEADER_BYTES, MAX_UNAUTHENTICATED_CONNECTIONS, ChunkAssembler,
                              Refused, parseChunkHeader, tokensEqual)

WSLINK_VERSION = "2.6.0"
log = logging.getLogger("AISegmentationWeb.websocket")

# What our subclass needs of wslink's handler: method -> what its source must contain.
_EXPECTED_SOURCE = {
    "handleWsRequest": ("await self.onConnect(request, client_id)", "await self.onMessage(",
                        "await self.onClose(client_id)", "self.connections[client_id] = current_ws"),
    "handleSystemMessage": ("await self.validateToken(", "self.authentified_client_ids.add(client_id)"),
    "onConnect": ("self.unchunkers[client_id] =",),
    "onClose": ("del self.unchunkers[client_id]",),
    "onCompleteMessage": ("await self.handleSystemMessage(", "self.isClientAuthenticated(client_id)"),
}


def requireWslinkShape():
    """RuntimeError naming what changed when the installed wslink is not shaped as our guards expect."""
    problems = []
    for method, fragments in _EXPECTED_SOURCE.items():
        try:
            source = inspect.getsource(getattr(AioHttpWsHandler, method))
        except (AttributeError, OSError, TypeError):  # missing, or without source: nothing we rely on holds
            source = ""
        problems += [f"{method} lacks `{fragment}`" for fragment in fragments if fragment not in source]
    chunk = next(chunking.generate_chunks(b"abc", 0))
    if chunking.HEADER_LENGTH != HEADER_BYTES or parseChunkHeader(chunk)[1:] != (0, 3):
        problems.append("the chunk header is not (id, offset, total) as three little-endian uint32")
    if problems:
        raise RuntimeError(f"wslink {wslink.__version__} differs from the {WSLINK_VERSION} that the page's websocket "
                           "limits were written for: " + "; ".join(problems))


class GuardedWsHandler(AioHttpWsHandler):
    """AioHttpWsHandler with our limits; made from wslink's instance by installGuards()."""

    def configureGuards(self, maxMessageBytes):
        self.guardMaxMessageBytes = int(maxMessageBytes)
        self.guardDeadlines = {}

    def unauthenticatedCount(self):
        return sum(1 for clientId in self.connections if not self.isClientAuthenticated(clientId))

    async def onConnect(self, request, client_id):
        await super().onConnect(request, client_id)
        self.unchunkers[client_id] = ChunkAssembler(self.guardMaxMessageBytes)
        if self.unauthenticatedCount() > MAX_UNAUTHENTICATED_CONNECTIONS:
            await self.refuse(client_id, Refused(f"more than {MAX_UNAUTHENTICATED_CONNECTIONS} connections wait "
                                                 "for their token", closeCode=1013))
            return
        loop = asyncio.get_running_loop()
        self.guardDeadlines[client_id] = loop.call_later(AUTH_SECONDS, self._onDeadline, client_id)

    def _onDeadline(self, clientId):
        if clientId in self.connections and not self.isClientAuthenticated(clientId):
            refusal = Refused(f"no valid token within {AUTH_SECONDS:.0f} s")
            asyncio.get_running_loop().create_task(self.refuse(clientId, refusal))

    async def onClose(self, client_id):
        deadline = self.guardDeadlines.pop(client_id, None)
        if deadline is not None:
            deadline.cancel()
        await super().onClose(client_id)

    async def onMessage(self, is_binary, msg, client_id):
        assembler = self.unchunkers.get(client_id)
        if assembler is None or isinstance(assembler, _Closed):  # refused and closing
            return
        try:
            if not is_binary:
                size = len(msg.data) if isinstance(msg.data, (bytes, str)) else 0
                raise Refused(f"a non-binary frame ({msg.type.name}, {size} bytes)")
            message = assembler.add(msg.data)
        except Refused as refusal:
            await self.refuse(client_id, refusal)
            return
        if message is None:
            return
        with self.network_monitor:
            await self.onCompleteMessage(message, client_id)
        if not assembler.authenticated and self.isClientAuthenticated(client_id):
            assembler.authenticate()
            deadline = self.guardDeadlines.pop(client_id, None)
            if deadline is not None:
                deadline.cancel()

    async def refuse(self, clientId, refusal):
        """Close a connection that broke a limit; one log line (sizes and counts only); its pending data dropped."""
        authenticated = self.isClientAuthenticated(clientId)
        log.log(logging.WARNING if authenticated else logging.INFO, "websocket %s%s closed: %s", clientId[:8],
                "" if authenticated else " (no token)", refusal)
        self.unchunkers[clientId] = _Closed()  # wslink's onClose deletes it
        websocket = self.connections.get(clientId)
        if websocket is not None and not websocket.closed:
            await websocket.close(code=refusal.closeCode, message=b"limit")

    async def validateToken(self, token, client_id):
        return tokensEqual(token, self.serverProtocol.secret if self.serverProtocol else None)


class _Closed:
    """The reassembler of a refused connection: keeps nothing."""

    def set_max_message_size(self, _size):  # noqa: N802 - wslink's interface
        pass


def installGuards(webApp, maxMessageBytes):
    """Put every websocket handler of wslink's web app under our limits (call from trame's on_server_bind)."""
    requireWslinkShape()
    handlers = getattr(webApp, "_ws_handlers", None)
    if not handlers:
        raise RuntimeError("wslink's web app has no websocket handler to guard")
    for handler in handlers:
        if type(handler) is not AioHttpWsHandler:
            raise RuntimeError(f"unexpected websocket handler {type(handler).__name__}: the page's limits need "
                               f"wslink {WSLINK_VERSION}'s AioHttpWsHandler")
        handler.__class__ = GuardedWsHandler
        handler.configureGuards(maxMessageBytes)
