"""Client of the current nnInteractive server (nninteractive-server, nnInteractive >= 2.5).

Everything on the wire - leases and their heartbeat, the Bearer API key, blosc2-packed arrays, changed-box replies -
is the official torch-free ``nninteractive-client`` library's ``nnInteractiveRemoteInferenceSession``. This class only
translates its exceptions into clear messages and hands back the changed region. Arrays are in KJI order.
"""

import json

import numpy as np

from .Errors import InteractiveError, LeaseLostError, ServerReplyError
from .HttpErrors import fromHttpxError
from .Protocol import currentCapabilities
from .Region import ChangedRegion, emptyRegion


def remoteSessionClass():
    try:
        from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession
    except ImportError as error:
        raise InteractiveError(
            "The current nnInteractive server needs the 'nninteractive-client' Python package, which is not installed "
            f"({error}). Install it with: pip install nninteractive-client==2.6.0") from None
    return nnInteractiveRemoteInferenceSession


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
        self.capabilities = currentCapabilities({
            "supported_interactions": session.supported_interactions,
            "supports_initial_label": session.supports_initial_label, "supports_undo": session.supports_undo,
            "license": session.license})
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
        except httpx.HTTPError as error:
            raise fromHttpxError(error, self.settings, what, timeout) from None
        except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as error:
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
        box = tuple((int(lo), int(hi)) for lo, hi in box)
        if any(hi <= lo for lo, hi in box):
            return emptyRegion()
        buffer = self._session.target_buffer
        return ChangedRegion(box, buffer[tuple(slice(lo, hi) for lo, hi in box)].copy())

    def close(self):
        session, self._session = getattr(self, "_session", None), None
        if session is not None:
            try:
                session.close()
            except Exception:  # closing is best effort: the server may be gone already
                pass
