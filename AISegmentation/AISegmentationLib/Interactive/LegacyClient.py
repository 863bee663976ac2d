"""Client of the legacy nnInteractive server (nninteractive-slicer-server): plain HTTP through requests.

Its protocol, as the server implements it: POST /upload_image (multipart "file": an .npy volume), /upload_segment
(gzip'ed .npy mask; an empty mask resets the interactions), /add_point_interaction and /add_bbox_interaction (JSON),
/add_scribble_interaction and /add_lasso_interaction (multipart gzip'ed .npy mask + form field positive_click).
Prompt replies are the whole segmentation as packed bits (np.packbits), gzip'ed; errors such as "No image uploaded"
come back as HTTP 200 with a JSON body {"status": "error", "message": ...}. There is no authentication, no undo and
no reset endpoint. Arrays travel in KJI order, as the volume's numpy view has them.
"""

import gzip
import io
import json
import logging
import zlib

import numpy as np

from ..Boxes import boundingBox
from .Errors import ServerReplyError
from .HttpErrors import fromRequestsError, statusError
from .Protocol import LEGACY_CAPABILITIES
from .Region import ChangedRegion, emptyRegion

GZIP_MAGIC = b"\x1f\x8b"
MAX_STATUS_REPLY = 1 << 20  # JSON status replies and error texts are small
READ_CHUNK = 1 << 20


class ImageMissingError(ServerReplyError):
    """The legacy server holds no image (it restarted, or another client took it over)."""


def _npy(array, compress):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array))
    data = buffer.getvalue()
    return gzip.compress(data, compresslevel=1) if compress else data


class LegacyClient:
    protocol = "legacy"
    capabilities = LEGACY_CAPABILITIES

    def __init__(self, settings):
        import requests

        self.settings = settings
        self._http = requests.Session()
        self._http.verify = settings.verifyTls
        # The legacy server has no authentication; a key, when given, is for a proxy in front of it.
        self._http.headers.update(settings.authorizationHeaders())
        self._shape = None
        self._packed = None  # the server's current segmentation, packed bits (what its replies are compared to)

    # HTTP ------------------------------------------------------------------------------------------------------

    def _post(self, path, what, upload=False, maxBytes=MAX_STATUS_REPLY, **kwargs):
        """POST and read the reply's body (at most maxBytes, decoded); returns (response, body)."""
        import requests

        timeout = (self.settings.connectTimeout, self.settings.uploadTimeout if upload else self.settings.readTimeout)
        try:
            response = self._http.post(self.settings.url + path, timeout=timeout, allow_redirects=False, stream=True,
                                       **kwargs)
            with response:
                ok = response.status_code == 200
                body = self._readBody(response, what, maxBytes if ok else MAX_STATUS_REPLY, truncate=not ok)
        except requests.exceptions.RequestException as error:
            raise fromRequestsError(error, self.settings, what) from None
        if not ok:
            raise statusError(self.settings, what, response.status_code, body.decode("utf-8", "replace"))
        if response.headers.get("content-type", "").startswith("application/json"):
            self._checkStatusReply(body, what)
        return response, body

    def _readBody(self, response, what, maxBytes, truncate=False):
        """The decoded body, read in chunks: a reply larger than maxBytes is refused (or cut, for error texts)."""
        chunks, size = [], 0
        for chunk in response.iter_content(READ_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size > maxBytes:
                if truncate:
                    break
                raise ServerReplyError(
                    f"The legacy nnInteractive server at {self.settings.origin} sent a reply to '{what}' of more than "
                    f"{maxBytes} bytes, more than such a reply can be (a whole segmentation of this image, gzip'ed). "
                    f"Nothing was changed.")
        return b"".join(chunks)[:maxBytes]

    def _checkStatusReply(self, body, what):
        try:
            data = json.loads(body)
        except ValueError:
            raise ServerReplyError(f"The legacy nnInteractive server at {self.settings.origin} sent an unreadable "
                                   f"reply to '{what}': {body[:200]!r}") from None
        if isinstance(data, dict) and data.get("status") == "error":
            message = str(data.get("message", "unknown error"))
            if "no image" in message.lower():
                self._shape = None
                raise ImageMissingError(
                    f"The legacy nnInteractive server at {self.settings.origin} has no image ('{message}'): it was "
                    f"restarted, or another client replaced the image. Nothing was changed; the image is sent again "
                    f"with the next prompt.")
            raise ServerReplyError(f"The legacy nnInteractive server at {self.settings.origin} refused '{what}': "
                                   f"{message}")

    # Image and segmentation ------------------------------------------------------------------------------------

    @property
    def hasImage(self):
        return self._shape is not None

    def setImage(self, image):
        """Send the volume (KJI array); the server resets its interactions and segmentation."""
        self._post("/upload_image", "upload image", upload=True,
                   files={"file": ("volume.npy", _npy(image, compress=False), "application/octet-stream")})
        self._shape = tuple(image.shape)
        self._packed = np.zeros(-(-int(np.prod(self._shape)) // 8), np.uint8)

    def setSegmentation(self, mask):
        """Start from an existing segmentation (all interactions are reset); an empty mask just resets."""
        mask = np.asarray(mask, bool)
        self._post("/upload_segment", "upload segmentation", upload=True,
                   files={"file": ("segment.npy.gz", _npy(mask.astype(np.uint8), compress=True),
                                   "application/octet-stream")})
        self._packed = np.packbits(mask, axis=None)

    def resetInteractions(self):
        self.setSegmentation(np.zeros(self._shape, bool))

    def undo(self):
        return False

    # Prompts ---------------------------------------------------------------------------------------------------

    def addPoint(self, kji, positive):
        reply = self._post("/add_point_interaction", "point prompt", maxBytes=self._maxReply,
                           json={"voxel_coord": [int(v) for v in kji], "positive_click": bool(positive)})
        return self._changedRegion(reply, "point prompt")

    def addBox(self, box, positive):
        """box: ((k0, k1), (j0, j1), (i0, i1)) half-open; the server takes two corners (lower, upper)."""
        reply = self._post("/add_bbox_interaction", "box prompt", maxBytes=self._maxReply, json={
            "outer_point_one": [int(lo) for lo, _ in box], "outer_point_two": [int(hi) for _, hi in box],
            "positive_click": bool(positive)})
        return self._changedRegion(reply, "box prompt")

    def addScribble(self, mask, positive, box=None):
        return self._maskPrompt("/add_scribble_interaction", "scribble prompt", mask, positive)

    def addLasso(self, mask, positive, box=None):
        return self._maskPrompt("/add_lasso_interaction", "lasso prompt", mask, positive)

    def _maskPrompt(self, path, what, mask, positive):
        reply = self._post(path, what, upload=True, maxBytes=self._maxReply,
                           files={"file": ("mask.npy.gz", _npy(np.asarray(mask, np.uint8), compress=True),
                                           "application/octet-stream")},
                           data={"positive_click": "true" if positive else "false"})
        return self._changedRegion(reply, what)

    @property
    def _maxReply(self):
        """The most bytes a prompt reply may have: the packed segmentation, or its gzip with its small overhead."""
        expected = self._packed.size if self._packed is not None else 0
        return expected + expected // 100 + 1024

    def _changedRegion(self, reply, what):
        """The region where the whole-volume reply differs from the previous segmentation."""
        expected = self._packed.size
        data = reply[1]
        if len(data) != expected and data[:2] == GZIP_MAGIC:
            data = self._gunzip(data, expected, what)
        if len(data) != expected:
            raise ServerReplyError(
                f"The legacy nnInteractive server at {self.settings.origin} sent a reply to '{what}' that is not a "
                f"segmentation of the image ({len(reply[1])} bytes, expected {expected} bytes of packed bits)")
        packed = np.frombuffer(data, np.uint8)
        previous, self._packed = self._packed, packed
        changedBytes = np.flatnonzero(packed != previous)
        if changedBytes.size == 0:
            logging.info("The %s changed nothing", what)
            return emptyRegion()
        return self._regionOfChangedBytes(packed, previous, changedBytes)

    def _gunzip(self, data, expected, what):
        """Decompress a gzip'ed reply, never to more than expected + 1 bytes; ServerReplyError when corrupt."""
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            result = decompressor.decompress(data, expected + 1)
        except zlib.error as error:
            raise ServerReplyError(f"The legacy nnInteractive server at {self.settings.origin} sent a corrupt gzip "
                                   f"reply to '{what}' ({error}). Nothing was changed.") from None
        if len(result) <= expected and not decompressor.eof:
            raise ServerReplyError(f"The legacy nnInteractive server at {self.settings.origin} sent a truncated gzip "
                                   f"reply to '{what}' ({len(data)} bytes). Nothing was changed.")
        return result

    def _regionOfChangedBytes(self, packed, previous, changedBytes):
        """Unpack only the slab of slices that holds changed bytes; the box is where the bits differ."""
        sliceVoxels = self._shape[1] * self._shape[2]
        kLow = int(changedBytes[0]) * 8 // sliceVoxels
        kHigh = min(self._shape[0], (int(changedBytes[-1]) * 8 + 7) // sliceVoxels + 1)
        start, stop = kLow * sliceVoxels, kHigh * sliceVoxels

        def unpackSlab(array):
            byteStart, byteStop = start // 8, -(-stop // 8)
            bits = np.unpackbits(array[byteStart:byteStop])[start - byteStart * 8:][:stop - start]
            return bits.reshape((kHigh - kLow,) + self._shape[1:])

        slab = unpackSlab(packed)
        box = boundingBox(slab != unpackSlab(previous))
        region = tuple(slice(lo, hi) for lo, hi in box)
        box = ((box[0][0] + kLow, box[0][1] + kLow),) + box[1:]
        return ChangedRegion(box, np.ascontiguousarray(slab[region]))

    def close(self):
        self._http.close()
