"""What one websocket connection may send and the server keeps: wslink's chunked messages reassembled under limits.

wslink (2.6) splits every message into chunks of at most maxMsgSize (4 MiB) bytes, each led by a 12-byte header of
three little-endian uint32: message id, offset of the chunk, total size of the message. Its own reassembler
allocates the announced total at the first chunk (up to 4 GiB after authentication, from a 12-byte header) and
keeps any number of unfinished messages. This one, installed for every connection by WebsocketGuard:
- before authentication: one unfinished message of at most PRE_AUTH_MESSAGE_BYTES, at most PRE_AUTH_MESSAGES
  messages in all (the page sends one: wslink.hello with the token);
- after: messages up to the upload limit plus an overhead, at most PENDING_MESSAGES unfinished;
- chunks in order (offset = bytes received so far, as wslink's JS client sends them), nothing allocated that has
  not arrived, nothing kept of a refused message; every complete message must be an RPC (a map with string id and
  method). A breach raises Refused, whose reason holds only sizes and counts, never the content.
No wslink import: the limits can be checked without the web environment.
"""

import hmac

import msgpack

HEADER_BYTES = 12
PRE_AUTH_MESSAGE_BYTES = 1024
PRE_AUTH_MESSAGES = 4
PENDING_MESSAGES = 4
MESSAGE_OVERHEAD_BYTES = 2**20  # the RPC around an uploaded file (names, state keys)
AUTH_SECONDS = 10.0
MAX_UNAUTHENTICATED_CONNECTIONS = 16


class Refused(Exception):
    """A connection broke a limit; the reason names sizes and counts only."""

    def __init__(self, reason, closeCode=1008):
        super().__init__(reason)
        self.closeCode = closeCode  # 1008 policy violation, 1009 message too big


def parseChunkHeader(chunk):
    """(message id, offset, total size) of a wslink chunk; Refused when it is shorter than a header."""
    if len(chunk) < HEADER_BYTES:
        raise Refused(f"a chunk of {len(chunk)} bytes, shorter than its {HEADER_BYTES}-byte header")
    return tuple(int.from_bytes(chunk[i:i + 4], "little") for i in (0, 4, 8))


def tokensEqual(given, expected):
    """Constant-time comparison of the token a client sent with the server's (False for anything not a string)."""
    if not isinstance(given, str) or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class ChunkAssembler:
    """One connection's unfinished messages, under the limits above (see the module docstring)."""

    def __init__(self, maxMessageBytes):
        self.maxAuthenticatedBytes = int(maxMessageBytes)
        self.authenticated = False
        self.completeMessages = 0
        self._pending = {}  # id -> [total size, bytearray received so far]

    def authenticate(self):
        self.authenticated = True

    def set_max_message_size(self, _size):  # noqa: N802 - wslink calls this after a good token: our limit stays
        pass

    def release_pending_messages(self):  # noqa: N802 - wslink's reassembler interface
        self._pending = {}

    @property
    def pendingBytes(self):
        return sum(len(received) for _, received in self._pending.values())

    def add(self, chunk):
        """The complete message (decoded) when this chunk ends one, else None; Refused on any breach."""
        messageId, offset, total = parseChunkHeader(chunk)
        content = memoryview(chunk)[HEADER_BYTES:]
        entry = self._pending.get(messageId)
        if entry is None:
            self._requireNewMessage(total)
            entry = self._pending[messageId] = [total, bytearray()]
        expectedTotal, received = entry
        if total != expectedTotal or offset != len(received) or offset + len(content) > total:
            del self._pending[messageId]
            raise Refused(f"a chunk at offset {offset} (+{len(content)} bytes) of a {total}-byte message, after "
                          f"{len(received)} of {expectedTotal} bytes")
        received += content
        if len(received) < total:
            return None
        del self._pending[messageId]
        self.completeMessages += 1
        if not self.authenticated and self.completeMessages > PRE_AUTH_MESSAGES:
            raise Refused(f"{self.completeMessages} messages without a valid token")
        return decodeRpc(received)

    def _requireNewMessage(self, total):
        limit = self.maxAuthenticatedBytes if self.authenticated else PRE_AUTH_MESSAGE_BYTES
        if total == 0 or total > limit:
            raise Refused(f"a message announced as {total} bytes; the limit is {limit} bytes"
                          + ("" if self.authenticated else " before the token"), closeCode=1009)
        pendingLimit = PENDING_MESSAGES if self.authenticated else 1
        if len(self._pending) >= pendingLimit:
            raise Refused(f"more than {pendingLimit} unfinished messages"
                          + ("" if self.authenticated else " before the token"))


def decodeRpc(data):
    """The RPC map of a complete message; Refused when it is not msgpack or not a map with string id and method."""
    try:
        message = msgpack.unpackb(data)
    except Exception:  # noqa: BLE001 - any decoding failure is a malformed message
        raise Refused(f"a {len(data)}-byte message that is not msgpack") from None
    if not isinstance(message, dict) or not isinstance(message.get("id"), str) \
            or not isinstance(message.get("method"), str):
        raise Refused(f"a {len(data)}-byte message that is not an RPC (a map with string id and method)")
    return message
