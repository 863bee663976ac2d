"""InteractiveSession: one nnInteractive server, one volume and one target segment, kept in step.

The server holds the image, the prompts so far and its segmentation of the current object; the target segment holds
what was written. Before each prompt the session makes sure that
- the server has this volume's image: it is sent again only when the volume really changed, judged from MRML
  modification state (the volume node, its image data object and that object's MTime), never by comparing arrays;
- the server starts from the segment's content: when the segment changed since the session last wrote it (another
  tool, undo, another target segment), its voxels go to the server as the initial segmentation.
Prompt geometry is checked by the caller (Prompts.py) before this class sends anything. A failed request changes
nothing in the scene; it only makes the next prompt send the image and the segment again where needed.
"""

import logging
import time

import numpy as np
import slicer

from ..SegmentEditing import requireSegment, requireVolume
from . import ResultWriter
from .Consent import ConsentStore, requireConsent
from .CurrentClient import CurrentClient
from .Errors import InteractiveError, LeaseLostError, ServerReplyError, ServerTimeoutError, ServerUnreachableError
from .LegacyClient import ImageMissingError, LegacyClient
from .Protocol import probeServer
from .Region import checkedRegion


class PromptResult:
    """What one prompt did: the changed box (KJI, half-open), voxels now set in it, whether the scene was written."""

    def __init__(self, kind, region, written, seconds, imageSent):
        self.kind = kind
        self.box = region.box
        self.voxels = int(np.count_nonzero(region.mask))
        self.written = written
        self.seconds = seconds
        self.imageSent = imageSent

    def __repr__(self):
        return (f"PromptResult({self.kind}, box={self.box}, voxels={self.voxels}, written={self.written}, "
                f"{self.seconds:.3f} s)")


def imageSignature(volumeNode):
    """What identifies the image content: the node, its image data object and the object's modification time."""
    image = volumeNode.GetImageData()
    return (volumeNode.GetID(), image.GetAddressAsString("vtkImageData"), image.GetMTime(),
            tuple(image.GetDimensions()), image.GetScalarType())


def segmentSignature(segmentationNode, segmentId):
    """What identifies a segment's content: the segmentation node, the segment and its labelmap's MTime."""
    segment = segmentationNode.GetSegmentation().GetSegment(segmentId)
    name = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    labelmap = segment.GetRepresentation(name) if segment is not None else None
    stamp = (labelmap.GetAddressAsString("vtkOrientedImageData"), labelmap.GetMTime()) if labelmap else None
    return (segmentationNode.GetID(), segmentId, stamp)


class PreparedPrompt:
    """What preparePrompt read from the scene for one prompt: the image (None: the server has it), the segment (None:
    the server is in step with it), the volume's KJI shape."""

    def __init__(self, kind, shape):
        self.kind = kind
        self.shape = shape
        self.image = self.imageSignature = self.segment = None
        self.started = time.perf_counter()


class InteractiveSession:
    """Prompts against one nnInteractive server, written into one target segment through the segment editor."""

    def __init__(self, settings, segmentEditorProvider, consentStore=None, consentCallback=None):
        self.settings = settings
        self._segmentEditor = segmentEditorProvider
        self.consentStore = consentStore if consentStore is not None else ConsentStore()
        self.consentCallback = consentCallback
        self.client = None
        self.serverInfo = None
        self.volumeNode = self.segmentationNode = self.segmentId = None
        self._imageSignature = None
        self._segmentSignature = None
        self.lastResult = None

    # Connection ------------------------------------------------------------------------------------------------

    def connect(self):
        """Detect the protocol (or check the chosen one) and open a client; returns the ServerInfo."""
        if self.client is not None:
            return self.serverInfo
        # A session exists to send images: no contact with a server on another machine before the user agreed.
        requireConsent(self.settings, self.consentStore, self.consentCallback)
        info = probeServer(self.settings)
        client = CurrentClient(self.settings) if info.protocol == "current" else LegacyClient(self.settings)
        if info.protocol == "current":
            info.capabilities = client.capabilities
        self.client, self.serverInfo = client, info
        self._imageSignature = self._segmentSignature = None
        return info

    def close(self):
        client, self.client = self.client, None
        if client is not None:
            client.close()
        self._imageSignature = self._segmentSignature = None

    @property
    def capabilities(self):
        return self.connect().capabilities

    def requireInteraction(self, name, label):
        if not self.capabilities["supportedInteractions"].get(name, False):
            raise InteractiveError(f"The nnInteractive server at {self.settings.origin} does not support {label} "
                                   f"prompts ({self.serverInfo.description})")

    # Target ----------------------------------------------------------------------------------------------------

    def setTarget(self, volumeNode, segmentationNode, segmentId):
        """Prompts go to segmentId of segmentationNode, on volumeNode's grid (geometry checked here)."""
        requireVolume(volumeNode)
        requireSegment(segmentationNode, segmentId)
        self._segmentEditor().bind(segmentationNode, volumeNode)
        if (segmentationNode, segmentId) != (self.segmentationNode, self.segmentId):
            self._segmentSignature = None
        self.volumeNode, self.segmentationNode, self.segmentId = volumeNode, segmentationNode, segmentId

    def requireTarget(self):
        if self.volumeNode is None or self.segmentationNode is None:
            raise ValueError("No interactive segmentation started: choose a volume, a segmentation and a segment")
        if self.volumeNode.GetScene() is None or self.segmentationNode.GetScene() is None:
            raise ValueError("The volume or segmentation of the interactive session was removed from the scene")
        requireVolume(self.volumeNode)
        requireSegment(self.segmentationNode, self.segmentId)

    # Keeping the server in step --------------------------------------------------------------------------------

    def ensureImage(self):
        """Send the volume when the server does not have this version of it; returns True when it was sent."""
        signature = imageSignature(self.volumeNode)
        if self.client is not None and signature == self._imageSignature and self.client.hasImage:
            return False
        requireConsent(self.settings, self.consentStore, self.consentCallback)
        self.connect()
        image = slicer.util.arrayFromVolume(self.volumeNode)
        started = time.perf_counter()
        self._guarded(lambda: self.client.setImage(image))
        logging.info("Sent volume '%s' %s to %s in %.2f s", self.volumeNode.GetName(), image.shape,
                     self.settings.origin, time.perf_counter() - started)
        self._imageSignature = signature
        self._segmentSignature = None
        return True

    def ensureSegmentSynced(self, force=False):
        """Give the server the segment's content as starting point when it changed since the session wrote it."""
        signature = segmentSignature(self.segmentationNode, self.segmentId)
        if signature == self._segmentSignature and not force:
            return False
        self._sendSegment(self._segmentEditor().segmentLabelmapArray(self.segmentationNode, self.segmentId,
                                                                     self.volumeNode))
        self._segmentSignature = segmentSignature(self.segmentationNode, self.segmentId)
        return True

    def _sendSegment(self, mask):
        """The segment's voxels as the server's initial segmentation (an empty segment: a reset of the object)."""
        if mask.any():
            if not self.capabilities["initialSegmentation"]:
                raise InteractiveError(f"The nnInteractive server at {self.settings.origin} cannot start from an "
                                       f"existing segment; empty the segment or choose an empty one")
            self._guarded(lambda: self.client.setSegmentation(mask))
            logging.info("Sent the target segment (%d voxels) as initial segmentation", mask.sum())
        else:
            self._guarded(self.client.resetInteractions)

    def _guarded(self, request):
        """Run a server request; on failure, forget what the server is believed to hold, then re-raise."""
        try:
            return request()
        except LeaseLostError:
            self.close()
            raise
        except ImageMissingError:
            self._imageSignature = self._segmentSignature = None
            raise
        except (ServerUnreachableError, ServerTimeoutError, ServerReplyError):
            # The server may or may not have applied the request: resynchronize before the next prompt.
            self._segmentSignature = None
            if isinstance(self.client, LegacyClient) or not self._isAlive():
                self._imageSignature = None
            raise

    def _isAlive(self):
        return self.client is not None and self.client.hasImage

    # Prompts ---------------------------------------------------------------------------------------------------

    def prompt(self, kind, send):
        """Run one prompt: send(client) -> ChangedRegion; the region is written into the target segment."""
        prepared = self.preparePrompt(kind)
        return self.finishPrompt(prepared, self.exchangePrompt(prepared, send))

    def preparePrompt(self, kind):
        """First part of a prompt, on the thread that owns the scene: what the server will need is read here (a copy
        of the image when the server lacks it, the segment when it changed) and consent is asked."""
        self.requireTarget()
        prepared = PreparedPrompt(kind, tuple(self.volumeNode.GetImageData().GetDimensions())[::-1])
        signature = imageSignature(self.volumeNode)
        if self.client is None or signature != self._imageSignature or not self.client.hasImage:
            requireConsent(self.settings, self.consentStore, self.consentCallback)
            prepared.image, prepared.imageSignature = slicer.util.arrayFromVolume(self.volumeNode).copy(), signature
        if prepared.image is not None or segmentSignature(self.segmentationNode, self.segmentId) != \
                self._segmentSignature:
            prepared.segment = self._segmentEditor().segmentLabelmapArray(self.segmentationNode, self.segmentId,
                                                                        self.volumeNode)
        return prepared

    def exchangePrompt(self, prepared, send):
        """Second part: only the server (may run on a worker thread; nothing here touches the scene). Returns the
        checked ChangedRegion."""
        if prepared.image is not None:
            self.connect()
            started = time.perf_counter()
            self._guarded(lambda: self.client.setImage(prepared.image))
            logging.info("Sent volume %s to %s in %.2f s", prepared.image.shape, self.settings.origin,
                         time.perf_counter() - started)
            self._imageSignature, self._segmentSignature = prepared.imageSignature, None
        if prepared.segment is not None:
            self._sendSegment(prepared.segment)
        what = f"{prepared.kind} prompt"
        return self._guarded(lambda: checkedRegion(send(self.client), prepared.shape, self.settings.origin, what))

    def finishPrompt(self, prepared, region):
        """Last part, on the thread that owns the scene: the region is written into the target segment."""
        self.requireTarget()
        written = ResultWriter.writeRegion(self._segmentEditor(), self.segmentationNode, self.segmentId,
                                           self.volumeNode, region)
        self._segmentSignature = segmentSignature(self.segmentationNode, self.segmentId)
        self.lastResult = PromptResult(prepared.kind, region, written, time.perf_counter() - prepared.started,
                                       prepared.image is not None)
        logging.info("nnInteractive %s", self.lastResult)
        return self.lastResult

    def forgetSegment(self):
        """The server's segmentation may differ from the segment: the next prompt sends the segment again."""
        self._segmentSignature = None

    def startFromSegment(self):
        """Send the image (if needed) and the target segment's content as the initial segmentation now."""
        self.requireTarget()
        self.ensureImage()
        return self.ensureSegmentSynced(force=True)

    def reset(self, clearSegment=True):
        """Forget all prompts on the server. clearSegment empties the target segment too (one undo state);
        otherwise the segment's content is the starting point of the next prompt."""
        self.requireTarget()
        serverReset = self.client is not None and self.client.hasImage
        if serverReset:
            self._guarded(self.client.resetInteractions)
        self._segmentSignature = None  # the next prompt starts from what the segment holds now
        if clearSegment:
            editor = self._segmentEditor()
            ResultWriter.clearSegment(editor, self.segmentationNode, self.segmentId, self.volumeNode)
            masking = editor.masking()
            if serverReset and masking["maskMode"] == "everywhere" and masking["intensityRange"] is None:
                # Nothing protected the segment: it is empty, as the server's segmentation now is.
                self._segmentSignature = segmentSignature(self.segmentationNode, self.segmentId)

    def undo(self):
        """Undo the last change of the target segment, and the last prompt on the server when that was it."""
        self.requireTarget()
        editor = self._segmentEditor()
        editor.bind(self.segmentationNode, self.volumeNode)
        wasOurs = segmentSignature(self.segmentationNode, self.segmentId) == self._segmentSignature
        editor.undo(self.segmentationNode)
        self._segmentSignature = None
        if wasOurs and self.client is not None and self.client.hasImage:
            try:
                undone = self.client.undo()
            except InteractiveError as error:
                logging.warning("Server-side undo failed (%s); the next prompt resends the segment", error)
                return
            if undone:
                self._segmentSignature = segmentSignature(self.segmentationNode, self.segmentId)
