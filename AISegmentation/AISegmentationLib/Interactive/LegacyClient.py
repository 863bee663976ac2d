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
import logging

import numpy as np

from .Errors import ServerReplyError
from .HttpErrors import fromRequestsError, statusError
from .Protocol import LEGACY_CAPABILITIES
from .Region import ChangedRegion, boundingBox, emptyRegion

GZIP_MAGIC = b"\x1f\x8b"


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

    def _post(self, path, what, upload=False, **kwargs):
        import requests

        timeout = (self.settings.connectTimeout, self.settings.uploadTimeout if upload else self.settings.readTimeout)
        try:
            response = self._http.post(self.settings.url + path, timeout=timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.RequestException as error:
            raise fromRequestsError(error, self.settings, what) from None
        if response.status_code != 200:
            raise statusError(self.settings, what, response.status_code, response.text)
        if response.headers.get("content-type", "").startswith("application/json"):
            self._checkStatusReply(response, what)
        return response

    def _checkStatusReply(self, response, what):
        try:
            data = response.json()
        except ValueError:
            raise ServerReplyError(f"The legacy nnInteractive server at {self.settings.origin} sent an unreadable "
                                   f"reply to '{what}': {response.text[:200]!r}") from None
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
        response = self._post("/add_point_interaction", "point prompt",
                              json={"voxel_coord": [int(v) for v in kji], "positive_click": bool(positive)})
        return self._changedRegion(response, "point prompt")

    def addBox(self, box, positive):
        """box: ((k0, k1), (j0, j1), (i0, i1)) half-open; the server takes two corners (lower, upper)."""
        response = self._post("/add_bbox_interaction", "box prompt", json={
            "outer_point_one": [int(lo) for lo, _ in box], "outer_point_two": [int(hi) for _, hi in box],
            "positive_click": bool(positive)})
        return self._changedRegion(response, "box prompt")

    def addScribble(self, mask, positive, box=None):
        return self._maskPrompt("/add_scribble_interaction", "scribble prompt", mask, positive)

    def addLasso(self, mask, positive, box=None):
        return self._maskPrompt("/add_lasso_interaction", "lasso prompt", mask, positive)

    def _maskPrompt(self, path, what, mask, positive):
        response = self._post(path, what, upload=True,
                              files={"file": ("mask.npy.gz", _npy(np.asarray(mask, np.uint8), compress=True),
                                              "application/octet-stream")},
                              data={"positive_click": "true" if positive else "false"})
        return self._changedRegion(response, what)

    def _changedRegion(self, response, what):
        """The region where the whole-volume reply differs from the previous segmentation."""
        expected = self._packed.size
        data = response.content
        if len(data) != expected and data[:2] == GZIP_MAGIC:
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                pass
        if len(data) != expected:
            raise ServerReplyError(
                f"The legacy nnInteractive server at {self.settings.origin} sent a reply to '{what}' that is not a "
                f"segmentation of the image ({len(response.content)} bytes, expected {expected} bytes of packed bits)")
        packed = np.frombuffer(data, np.uint8)
        previous, self._packed = self._packed, packed
        changedBytes = np.flatnonzero(packed != previous)
        if changedBytes.size == 0:
            logging.info("The %s changed nothing", what)
            return emptyRegion()
        return self._regionOfChangedBytes(packed, previous, changedBytes)

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
