"""nnInteractive prompts: the interactive area logic that the facade (AISegmentationLogic) composes.

The panel only turns MRML node events into these calls: every prompt method takes plain RAS coordinates or the
markups / segmentation node the user draws with (point list, ROI, closed curve, a painted scribble segment).

    logic.setInteractiveServer("http://127.0.0.1:1527", apiKey=None)    # protocol detected on first use
    ok, message, info = logic.testInteractiveConnection()                 # version, protocol, capabilities
    logic.startInteractiveSegmentation(volume, segmentation, segmentId)   # segment content = starting point
    logic.interactivePoint([x, y, z])                                     # or a point list node
    logic.interactiveBox(roiNode, positive=False)                          # or two RAS corners
    logic.interactiveLasso(closedCurveNode); logic.interactiveScribble(scribbleSegmentation, "scribble")
    logic.interactiveUndo(); logic.interactiveReset()

Results go through the segment editor logic (masking, overwrite mode, one undo state per prompt). Images go to a
server on another machine only after consent (interactiveConsentCallback, or allowInteractiveServer()). The API key
is held in memory only: nothing here writes it into the scene or the log.
"""

import numpy as np
import slicer

from . import Prompts
from .Connection import ServerSettings, normalizeUrl
from .Consent import ConsentStore
from .PromptJob import PromptJob
from .Protocol import testConnection
from .Session import InteractiveSession


class InteractiveLogic:
    """nnInteractive methods for the facade; see the module docstring."""

    def __init__(self, segmentEditor):
        """segmentEditor(): the facade's current SegmentEditor (prompts are written through it)."""
        self._segmentEditor = segmentEditor
        self._interactiveSession = None
        self._interactiveConsentStore = None
        #: callback(serverOrigin) -> bool, asked before the first image goes to a server on another machine
        self.interactiveConsentCallback = None

    # Server ----------------------------------------------------------------------------------------------------

    def setInteractiveServer(self, url, apiKey=None, protocol="auto", connectTimeout=5.0, readTimeout=120.0,
                             uploadTimeout=600.0, verifyTls=True):
        """Use this nnInteractive server from now on (protocol "auto", "current" or "legacy"); nothing is sent yet.

        The previous session, if any, is closed (its lease released); the target segment is kept.
        """
        settings = ServerSettings(url, apiKey, protocol, connectTimeout, readTimeout, uploadTimeout, verifyTls)
        previous = self._interactiveSession
        session = InteractiveSession(settings, self._segmentEditor, self.interactiveConsentStore(),
                                     self._askInteractiveConsent)
        if previous is not None:
            previous.close()
            if previous.volumeNode is not None and previous.segmentationNode is not None:
                session.volumeNode, session.segmentationNode = previous.volumeNode, previous.segmentationNode
                session.segmentId = previous.segmentId
        self._interactiveSession = session
        return settings

    def useInteractiveServer(self, url, apiKey=None):
        """setInteractiveServer(url, apiKey) unless that server, with that key, is already in use (its session and
        prompts are kept then); returns the server settings."""
        session = self._interactiveSession
        if session is not None and session.settings.url == normalizeUrl(url) and session.settings.apiKey == apiKey:
            return session.settings
        return self.setInteractiveServer(url, apiKey)

    @property
    def interactiveSession(self):
        session = self._interactiveSession
        if session is None:
            raise ValueError("No nnInteractive server set: call setInteractiveServer(url) first")
        return session

    def testInteractiveConnection(self):
        """(ok, message, ServerInfo or None): reachability, protocol, version and capabilities; never raises."""
        session = self._interactiveSession
        if session is None:
            return False, "No nnInteractive server set: call setInteractiveServer(url) first", None
        return testConnection(session.settings)

    def closeInteractiveSession(self):
        """Release the server session (the current server's lease); the segment stays as it is."""
        session = self._interactiveSession
        if session is not None:
            session.close()

    # Consent ---------------------------------------------------------------------------------------------------

    def interactiveConsentStore(self):
        store = self._interactiveConsentStore
        if store is None:
            store = self._interactiveConsentStore = ConsentStore()
        return store

    def setInteractiveConsentStore(self, store):
        """Where agreements are remembered (ConsentStore(path) or ConsentStore(None) for memory only)."""
        self._interactiveConsentStore = store
        session = self._interactiveSession
        if session is not None:
            session.consentStore = store

    def allowInteractiveServer(self, url=None):
        """Agree to send images to this server (default: the current one); remembered per server."""
        origin = ServerSettings(url).origin if url else self.interactiveSession.settings.origin
        self.interactiveConsentStore().allow(origin)
        return origin

    def revokeInteractiveServer(self, url=None):
        origin = ServerSettings(url).origin if url else self.interactiveSession.settings.origin
        self.interactiveConsentStore().revoke(origin)

    def _askInteractiveConsent(self, origin):
        callback = self.interactiveConsentCallback
        return bool(callback(origin)) if callback is not None else False

    # Target ----------------------------------------------------------------------------------------------------

    def startInteractiveSegmentation(self, volumeNode, segmentationNode, segmentId):
        """Prompts from now on segment segmentId on volumeNode; its current content is the starting point."""
        self.interactiveSession.setTarget(volumeNode, segmentationNode, segmentId)
        return self.interactiveSession

    def startInteractiveFromSegment(self, volumeNode, segmentationNode, segmentId):
        """Like startInteractiveSegmentation, and send the image and the segment (initial segmentation) now."""
        session = self.startInteractiveSegmentation(volumeNode, segmentationNode, segmentId)
        session.startFromSegment()
        return session

    # Prompts ---------------------------------------------------------------------------------------------------

    def interactivePoint(self, point, positive=True, controlPointIndex=-1):
        """Point prompt at a RAS point, or at a control point of a markups point list (default: its last one)."""
        return self._prompt(self._pointRequest(point, positive, controlPointIndex))

    def interactiveBox(self, box, positive=True):
        """Box prompt: a markups ROI node, or two opposite RAS corners. A box flat along a voxel axis is a 2D box on
        that slice; a 3D box needs a server that supports 3D boxes."""
        return self._prompt(self._boxRequest(box, positive))

    def interactiveLasso(self, polygon, positive=True):
        """Lasso prompt: a closed curve node (or any curve markups node), or N x 3 RAS points on one slice."""
        return self._prompt(self._lassoRequest(polygon, positive))

    def interactiveScribble(self, scribble, scribbleSegmentId=None, positive=True):
        """Scribble prompt: a painted segment (segmentation node + segment ID) or a KJI 0/1 array on the volume."""
        return self._prompt(self._scribbleRequest(scribble, positive, scribbleSegmentId))

    def startInteractivePrompt(self, kind, prompt, positive=True, **details):
        """A prompt as a job (what the panel uses): the prompt's geometry and what the server needs are read now; the
        server exchange runs on a worker thread; job.wait() writes the result on the calling thread and returns the
        PromptResult. kind: point, box, lasso or scribble, with the argument the matching interactive* method takes
        (details: controlPointIndex, scribbleSegmentId). Until the job ends, other writes are refused."""
        requests = {"point": self._pointRequest, "box": self._boxRequest, "lasso": self._lassoRequest,
                    "scribble": self._scribbleRequest}
        if kind not in requests:
            raise ValueError(f"Unknown prompt kind '{kind}'; choose one of: {', '.join(requests)}")
        interaction, label, send = requests[kind](prompt, positive, **details)
        session = self.interactiveSession
        prepared = session.preparePrompt(kind)
        return PromptJob(session, prepared, interaction, label, send, self._segmentEditor()).start()

    def _prompt(self, request):
        interaction, label, send = request
        session = self.interactiveSession
        session.requireInteraction(interaction, label)
        return session.prompt(_KINDS[interaction], send)

    # Prompt requests: (interaction the server must support, its label, send(client) -> ChangedRegion) ----------

    def _pointRequest(self, point, positive=True, controlPointIndex=-1):
        session = self.interactiveSession
        session.requireTarget()
        ras = _controlPointRas(point, controlPointIndex) if _isNode(point) else point
        kji = Prompts.pointKji(session.volumeNode, ras)
        return "points", "point", lambda client: client.addPoint(kji, positive)

    def _boxRequest(self, box, positive=True):
        session = self.interactiveSession
        session.requireTarget()
        corners = _roiCorners(box) if _isNode(box) else box
        boxKji = Prompts.boxKji(session.volumeNode, corners)
        send = lambda client: client.addBox(boxKji, positive)  # noqa: E731
        if any(hi - lo == 1 for lo, hi in boxKji):
            return "bbox2d", "2D box", send
        return "bbox3d", "3D box (draw the box on one slice)", send

    def _lassoRequest(self, polygon, positive=True):
        session = self.interactiveSession
        session.requireTarget()
        points = _curvePointsRas(polygon) if _isNode(polygon) else polygon
        mask, boxKji = Prompts.lassoMask(session.volumeNode, points)
        return "lasso", "lasso", lambda client: client.addLasso(mask, positive, boxKji)

    def _scribbleRequest(self, scribble, positive=True, scribbleSegmentId=None):
        session = self.interactiveSession
        session.requireTarget()
        if _isNode(scribble):
            if not scribbleSegmentId:
                raise ValueError("A scribble from a segmentation node needs the scribble segment's ID")
            array = slicer.util.arrayFromSegmentBinaryLabelmap(scribble, scribbleSegmentId, session.volumeNode)
            if array is None:
                raise ValueError(f"Segmentation '{scribble.GetName()}' has no segment '{scribbleSegmentId}'")
        else:
            array = scribble
        mask, boxKji = Prompts.scribbleMask(session.volumeNode, array)
        return "scribble", "scribble", lambda client: client.addScribble(mask, positive, boxKji)

    def interactiveUndo(self):
        """Undo the last prompt (the segment and, when the server can, its state)."""
        self.interactiveSession.undo()

    def interactiveReset(self, clearSegment=True):
        """Start a new object: the server forgets all prompts; by default the target segment is emptied too."""
        self.interactiveSession.reset(clearSegment)


# the prompt kind of each interaction (the name the result and the log give)
_KINDS = {"points": "point", "bbox2d": "box", "bbox3d": "box", "lasso": "lasso", "scribble": "scribble"}


def _isNode(value):
    return hasattr(value, "IsA") and hasattr(value, "GetID")


def _controlPointRas(node, index):
    if not node.IsA("vtkMRMLMarkupsNode"):
        raise ValueError(f"Node '{node.GetName()}' is not a markups node")
    count = node.GetNumberOfControlPoints()
    if count == 0:
        raise ValueError(f"Point list '{node.GetName()}' has no points")
    if not -count <= index < count:
        raise ValueError(f"Point list '{node.GetName()}' has no point {index} (it has {count})")
    position = [0.0, 0.0, 0.0]
    node.GetNthControlPointPositionWorld(index % count, position)
    return position


def _roiCorners(node):
    """The 8 RAS corners of a markups ROI (oriented boxes included)."""
    if not node.IsA("vtkMRMLMarkupsROINode"):
        raise ValueError(f"Node '{node.GetName()}' is not a markups ROI")
    center, size = [0.0] * 3, [0.0] * 3
    node.GetCenterWorld(center)
    node.GetSizeWorld(size)
    axes = []
    for getter in (node.GetXAxisWorld, node.GetYAxisWorld, node.GetZAxisWorld):
        axis = [0.0] * 3
        getter(axis)
        axes.append(np.asarray(axis))
    half = [axis * length / 2.0 for axis, length in zip(axes, size)]
    return np.array([np.asarray(center) + sx * half[0] + sy * half[1] + sz * half[2]
                     for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])


def _curvePointsRas(node):
    if not node.IsA("vtkMRMLMarkupsCurveNode"):
        raise ValueError(f"Node '{node.GetName()}' is not a (closed) curve markups node")
    points = node.GetCurvePointsWorld()
    if points is None or points.GetNumberOfPoints() < 3:
        return slicer.util.arrayFromMarkupsControlPoints(node, world=True)
    from vtk.util.numpy_support import vtk_to_numpy

    return vtk_to_numpy(points.GetData()).astype(float)
