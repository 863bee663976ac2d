"""Client of the current nnInteractive server (nninteractive-server, nnInteractive >= 2.5).

Everything on the wire - leases and their heartbeat, the Bearer API key, blosc2-packed arrays, changed-box replies -
is the official torch-free ``nninteractive-client`` library's ``nnInteractiveRemoteInferenceSession``. This class only
translates its exceptions into clear messages and hands back the changed region. Arrays are in KJI order.
"""

import json
import struct
import zlib

import numpy as np

from .Errors import InteractiveError, LeaseLostError, ServerReplyError
from .HttpErrors import fromHttpxError
from .Protocol import currentCapabilities
from .Region import ChangedRegion, checkedBox, emptyRegion

META_HEADER = "X-Meta"  # the official protocol's JSON metadata header
PACKED_MAGIC = b"NNIA"
PACKED_DTYPES = ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")


def remoteSessionClass():
    try:
        from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
    except ImportError as error:
        raise InteractiveError(
            "The current nnInteractive server needs the 'nninteractive-client' Python package, which is not installed "
            f"({error}). Install it with: pip install nninteractive-client==2.6.0") from None
    return checkedSessionClass(nnInteractiveRemoteInferenceSession)


def checkedSessionClass(base):
    """The official session class with every prediction reply checked before it touches the target buffer.

    The library writes the reply's array into its target buffer at the reply's box as numpy slicing takes it: a
    negative start would wrap around, a (1, 1, 1) array would be broadcast. Here the box must lie inside the buffer
    and the array header must declare exactly the box's shape and an integer type, before anything is unpacked.
    """
    class CheckedRemoteSession(base):
        origin = "the server"

        def _apply_prediction_response(self, resp):
            metaText = resp.headers.get(META_HEADER)
            if metaText is not None and self.target_buffer is not None:
                meta = json.loads(metaText)
                if not isinstance(meta, dict):
                    raise ServerReplyError(f"The nnInteractive server at {self.origin} sent a reply whose "
                                           f"{META_HEADER} header is not a JSON object: {metaText[:120]!r}")
                if meta.get("ran_prediction") and meta.get("bbox") is not None:
                    box = checkedBox(meta["bbox"], self.target_buffer.shape, self.origin, "prediction")
                    if resp.content:
                        checkPackedHeader(resp.content, tuple(hi - lo for lo, hi in box), self.origin)
            return super()._apply_prediction_response(resp)

        def _write_bbox_into_target_buffer(self, diff, bbox):
            box = checkedBox(bbox, self.target_buffer.shape, self.origin, "prediction")
            if not isinstance(diff, np.ndarray) or diff.shape != tuple(hi - lo for lo, hi in box):
                raise ServerReplyError(f"The nnInteractive server at {self.origin} sent a changed region of shape "
                                       f"{getattr(diff, 'shape', None)} for the box {box}")
            return super()._write_bbox_into_target_buffer(diff, bbox)

    return CheckedRemoteSession


def checkPackedHeader(data, shape, origin):
    """ServerReplyError unless a packed array (the official wire format: "NNIA", version, codec, ndim, dtype name,
    int64 shape) declares exactly shape and an integer or bool type; read before the library allocates it."""
    problem = None
    if len(data) < 8 or data[:4] != PACKED_MAGIC:
        problem = "it does not start like a packed array"
    else:
        ndim, nameLength = data[6], data[7]
        end = 8 + nameLength + 8 * ndim
        if len(data) < end + 4:
            problem = f"it is truncated ({len(data)} bytes)"
        else:
            name = data[8:8 + nameLength].decode("ascii", "replace")
            declared = struct.unpack_from(f"<{ndim}q", data, 8 + nameLength)
            if name not in PACKED_DTYPES:
                problem = f"its type is '{name}', not an integer mask"
            elif declared != tuple(shape):
                problem = f"it declares shape {declared}"
    if problem:
        raise ServerReplyError(f"The nnInteractive server at {origin} sent a changed region that does not fit its "
                               f"box of shape {tuple(shape)}: {problem}. Nothing was changed.")


class CurrentClient:
    protocol = "current"

    def __init__(self, settings):
        self.settings = settings
        self._shape = None
        sessionClass = remoteSessionClass()
        # An empty key (not None) so that the library does not fall back to NN_INTERACTIVE_API_KEY silently.
        self._session = self._call("connect", lambda: sessionClass(
            settings.url, api_key=settings.apiKey or "", connect_timeout=settings.connectTimeout,
            read_timeout=settings.readTimeout, set_image_read_timeout=settings.uploadTimeout,
            write_timeout=settings.uploadTimeout, pool_timeout=settings.connectTimeout))
        session = self._session
        session.origin = settings.origin
        try:
            self.capabilities = currentCapabilities({
                "supported_interactions": session.supported_interactions,
                "supports_initial_label": session.supports_initial_label, "supports_undo": session.supports_undo,
                "license": session.license}, settings.origin)
        except InteractiveError:
            self.close()
            raise
        self.capabilities["authentication"] = settings.hasApiKey

    def _call(self, what, function, timeout=None):
        import httpx
        from nnInteractive.inference.remote import ServerAtCapacityError, SessionExpiredError

        try:
            return function()
        except SessionExpiredError as error:
            self._shape = None
            raise LeaseLostError(
                f"The nnInteractive server at {self.settings.origin} ended this session ({error}): idle timeout or "
                f"server restart. Nothing was changed; the next prompt reconnects and sends the image again."
            ) from None
        except ServerAtCapacityError as error:
            raise ServerReplyError(f"The nnInteractive server at {self.settings.origin} is at capacity ({error}); "
                                   f"wait and try again, or ask its operator to allow more sessions.") from None
        except InteractiveError:
            raise
        except httpx.HTTPError as error:
            raise fromHttpxError(error, self.settings, what, timeout) from None
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, OverflowError, MemoryError,
                struct.error, zlib.error) as error:
            raise ServerReplyError(f"The nnInteractive server at {self.settings.origin} sent a reply to '{what}' that "
                                   f"is not what the protocol says ({type(error).__name__}: {error})") from None

    @property
    def hasImage(self):
        return self._shape is not None

    def setImage(self, image):
        """Send the volume (KJI array) and a fresh uint8 target buffer that the client keeps up to date."""
        self._shape = None
        self._call("upload image", lambda: self._session.set_image(image[None]), self.settings.uploadTimeout)
        self._call("set target buffer", lambda: self._session.set_target_buffer(np.zeros(image.shape, np.uint8)))
        self._shape = tuple(image.shape)

    def setSegmentation(self, mask):
        """Start from an existing segmentation (resets the interactions)."""
        mask = np.ascontiguousarray(mask, np.uint8)
        self._call("upload segmentation", lambda: self._session.add_initial_seg_interaction(mask))

    def resetInteractions(self):
        self._call("reset", self._session.reset_interactions)

    def undo(self):
        """Revert the last interaction on the server; False when it has nothing to undo (or cannot undo)."""
        if not self.capabilities["serverUndo"]:
            return False
        return bool(self._call("undo", self._session.undo))

    def addPoint(self, kji, positive):
        return self._region(self._call("point prompt", lambda: self._session.add_point_interaction(
            [int(v) for v in kji], include_interaction=bool(positive))))

    def addBox(self, box, positive):
        return self._region(self._call("box prompt", lambda: self._session.add_bbox_interaction(
            [[int(lo), int(hi)] for lo, hi in box], include_interaction=bool(positive))))

    def addScribble(self, mask, positive, box):
        return self._maskPrompt("scribble prompt", self._session.add_scribble_interaction, mask, positive, box)

    def addLasso(self, mask, positive, box):
        return self._maskPrompt("lasso prompt", self._session.add_lasso_interaction, mask, positive, box)

    def _maskPrompt(self, what, method, mask, positive, box):
        """Only the prompt's box travels (interaction_bbox), not a whole-volume mask."""
        crop = np.ascontiguousarray(mask[tuple(slice(lo, hi) for lo, hi in box)], np.uint8)
        return self._region(self._call(what, lambda: method(
            crop, include_interaction=bool(positive), interaction_bbox=[[int(lo), int(hi)] for lo, hi in box])))

    def _region(self, box):
        if box is None:
            return emptyRegion()
        buffer = self._session.target_buffer
        box = checkedBox(box, buffer.shape, self.settings.origin, "prompt")
        if any(hi <= lo for lo, hi in box):
            return emptyRegion()
        return ChangedRegion(box, buffer[tuple(slice(lo, hi) for lo, hi in box)].copy())

    def close(self):
        session, self._session = getattr(self, "_session", None), None
        if session is not None:
            try:
                session.close()
            except Exception:  # closing is best effort: the server may be gone already
                pass
