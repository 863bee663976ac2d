"""The page's server side: the scene, the Logic, the views and what every panel shares (node lists, the segment table,
the action log with its timings, Undo across trame-slicer's editor and the Logic).

The panels (Files, Editing, Classic, AiRuns, Interactive, Comparison, Training) each bind their own controls to
the Logic.
"""

import asyncio
import contextlib
import functools
import inspect
import logging
import time

from trame.app import TrameApp

from AISegmentationLib.Logic import AISegmentationLogic

from . import AiRuns, Classic, Comparison, Editing, Files, Interactive, Layout, Training
from .InteractiveAccess import InteractiveServers
from .SlicerScene import createSlicerScene

log = logging.getLogger("AISegmentationWeb")

TRAME_EDIT = "editor"  # an entry of the undo history: a stroke of trame-slicer's paint / erase / scissors
LOGIC_EDIT = "logic"  # a write through the Logic (its own undo state)


def hexColor(rgb):
    return "#" + "".join(f"{int(round(max(0.0, min(1.0, c)) * 255)):02x}" for c in rgb[:3])


class Page(TrameApp):
    """One page, one scene (a single-user front end: every browser tab sees the same scene)."""

    def __init__(self, server=None, maxUploadBytes=2**30, interactiveServers=None):
        super().__init__(server)
        from trame_slicer import module as trameSlicerModule
        from trame_slicer.core import LayoutManager
        from trame_slicer.rca_view import register_rca_factories
        from undo_stack import UndoStack

        self.server.enable_module(trameSlicerModule)
        self.maxUploadBytes = maxUploadBytes
        self.interactiveServers = interactiveServers or InteractiveServers()
        self.slicerApp, runtime = createSlicerScene()
        self.logic = AISegmentationLogic(runtime)
        register_rca_factories(self.slicerApp.view_manager, self.server)
        self.layoutManager = LayoutManager(self.scene, self.slicerApp.view_manager, self.server)
        self.layoutManager.register_layout("main", Layout.viewLayout())
        self.layoutManager.set_layout("main")
        self.editor = self.slicerApp.segmentation_editor
        self.editorUndo = UndoStack(undo_limit=20)
        self.editor.set_undo_stack(self.editorUndo)
        self._history = []  # TRAME_EDIT / LOGIC_EDIT, newest last
        self._editorIndex = 0
        self._undoing = False
        self.editorUndo.index_changed.connect(self._onEditorIndexChanged)
        self._initialState()
        self.panels = [panel(self) for panel in (Files.FilesPanel, Editing.EditingPanel, Classic.ClassicPanel,
                                                 AiRuns.AiPanel, Interactive.InteractivePanel,
                                                 Comparison.ComparisonPanel, Training.TrainingPanel)]
        self.ctrl.undo = self.action("undo")(self.undo)
        self.state.change("volumeId", "segmentationId")(self._onSelectionChanged)
        self.state.change("segmentId")(self._onSegmentChanged)
        Layout.buildPage(self)

    # Shared state ----------------------------------------------------------------------------------------------

    @property
    def scene(self):
        return self.slicerApp.scene

    def _initialState(self):
        state = self.state
        state.trame__title = "AISegmentation"
        state.volumes, state.volumeId = [], None
        state.segmentations, state.segmentationId = [], None
        state.segments, state.segmentId = [], None
        state.error, state.info = "", ""
        state.actionCount, state.lastAction, state.canUndo = 0, "", False
        state.segmentationName, state.volumeName = "segmentation", "volume"

    def node(self, nodeId):
        return self.scene.GetNodeByID(nodeId) if nodeId else None

    @property
    def volume(self):
        return self.node(self.state.volumeId)

    @property
    def segmentation(self):
        return self.node(self.state.segmentationId)

    def requireVolumeAndSegmentation(self):
        if self.volume is None:
            raise ValueError("Load a volume first")
        if self.segmentation is None:
            raise ValueError("Create or load a segmentation first")
        return self.volume, self.segmentation

    def requireSegmentId(self):
        volume, segmentation = self.requireVolumeAndSegmentation()
        segmentId = self.state.segmentId
        if not segmentId or segmentation.GetSegmentation().GetSegment(segmentId) is None:
            raise ValueError("Select a segment first (add one in Segments)")
        return volume, segmentation, segmentId

    def refreshNodes(self):
        """The volume and segmentation lists (and a valid selection in each)."""
        def listOf(className):
            nodes = [n for n in self.scene.GetNodesByClass(className) if not n.GetHideFromEditors()]
            return [{"title": n.GetName(), "value": n.GetID()} for n in nodes
                    if not n.GetName().endswith(" preview")]

        with self.state:
            self.state.volumes = listOf("vtkMRMLScalarVolumeNode")
            self.state.segmentations = listOf("vtkMRMLSegmentationNode")
            for key, items in (("volumeId", self.state.volumes), ("segmentationId", self.state.segmentations)):
                if self.state[key] not in [item["value"] for item in items]:
                    self.state[key] = items[-1]["value"] if items else None

    def refreshSegments(self):
        """The segment table (name, colour, voxel count and volume from the Logic)."""
        volume, segmentation = self.volume, self.segmentation
        rows = []
        if volume is not None and segmentation is not None and self._sameGeometry(volume, segmentation):
            statistics = {row["segment"]: row for row in self.logic.segmentStatistics(segmentation, volume)}
            for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
                segment = segmentation.GetSegmentation().GetSegment(segmentId)
                row = statistics.get(segment.GetName(), {})
                rows.append({"id": segmentId, "name": segment.GetName(), "color": hexColor(segment.GetColor()),
                             "voxels": row.get("voxels", 0), "volumeMl": row.get("volumeMl", 0.0)})
        with self.state:
            self.state.segments = rows
            if self.state.segmentId not in [row["id"] for row in rows]:
                self.state.segmentId = rows[0]["id"] if rows else None
            self.state.canUndo = bool(self._history)
            self.state.segmentationName = segmentation.GetName() if segmentation is not None else "segmentation"
            self.state.volumeName = volume.GetName() if volume is not None else "volume"

    def _sameGeometry(self, volume, segmentation):
        try:
            self.logic.segmentEditor.bind(segmentation, volume)
            return True
        except ValueError:
            return False

    def showSegmentation(self, segmentationNode):
        """Select a segmentation on the page and make it the one trame-slicer's editor paints into."""
        self.refreshNodes()
        self.state.segmentationId = segmentationNode.GetID()
        self.bindEditor()

    def bindEditor(self):
        """Make the selected segmentation and volume the ones trame-slicer's editor paints into (ValueError when
        their geometries differ: trame-slicer would silently re-reference the segmentation to the volume)."""
        volume, segmentation = self.volume, self.segmentation
        if volume is None or segmentation is None:
            return
        self.logic.segmentEditor.bind(segmentation, volume)  # ValueError when their geometries differ
        if self.editor.active_segmentation_node is not segmentation or self.editor.active_volume_node is not volume:
            self.editor.set_active_segmentation(segmentation, volume)  # clears the editor's undo stack
            self._history = []  # Undo works on the segmentation being edited, as in the Segment Editor
            self._editorIndex = 0
        if self.state.segmentId:
            self.editor.set_active_segment_id(self.state.segmentId)

    def _onSelectionChanged(self, **_):
        self._showOnlySelectedSegmentation()
        try:
            self.bindEditor()
        except ValueError as error:  # e.g. a segmentation made for another volume: shown, nothing is bound
            self.state.error = str(error)
        self.refreshSegments()

    def _showOnlySelectedSegmentation(self):
        """The views show the selected segmentation (and a grow-from-seeds preview), not the others."""
        selected = self.segmentation
        for node in self.scene.GetNodesByClass("vtkMRMLSegmentationNode"):
            if not node.GetName().endswith(" preview"):
                node.SetDisplayVisibility(node is selected)

    def _onSegmentChanged(self, segmentId=None, **_):
        if segmentId and self.editor.active_segmentation_node is not None:
            self.editor.set_active_segment_id(segmentId)

    # Actions: errors shown on the page, timings, undo history ------------------------------------------------------

    def action(self, name, edits=False):
        """Decorator for a control's handler: a ValueError becomes the page's error line; the action is counted and
        timed (the page's action log, for users and the tests); edits=True records a Logic undo state. A coroutine
        handler runs as a task of its own, so that what it awaits (reads in a worker thread) blocks nobody."""
        def decorator(function):
            if inspect.iscoroutinefunction(function):
                @functools.wraps(function)
                def schedule(*args, **kwargs):
                    async def runTask():
                        with self._running(name, edits):
                            await function(*args, **kwargs)

                    asyncio.get_event_loop().create_task(runTask())

                return schedule

            @functools.wraps(function)
            def run(*args, **kwargs):
                with self._running(name, edits):
                    function(*args, **kwargs)

            return run

        return decorator

    @contextlib.contextmanager
    def _running(self, name, edits):
        start = time.perf_counter()
        outcome = "ok"
        try:
            self.state.error = ""
            yield
            if edits:
                self._history.append(LOGIC_EDIT)
        except ValueError as error:
            outcome = "error"
            self.state.error = str(error)
        except Exception as error:  # noqa: BLE001 - shown to the user, logged with its traceback
            outcome = "error"
            log.exception("%s failed", name)
            self.state.error = f"{name} failed: {error}"
        self.finishAction(name, outcome, start)

    def finishAction(self, name, outcome, start):
        self.refreshSegments()
        milliseconds = (time.perf_counter() - start) * 1000.0
        with self.state:
            self.state.actionCount += 1
            self.state.lastAction = f"#{self.state.actionCount} {name}: {outcome} ({milliseconds:.0f} ms)"
        log.info("action %s: %s in %.0f ms", name, outcome, milliseconds)

    def _onEditorIndexChanged(self, index):
        if self._undoing:
            self._editorIndex = index
            return
        if index > self._editorIndex:  # a new stroke of the editor's effects
            self._history.append(TRAME_EDIT)
            self._editorIndex = index
            self.finishAction("editor stroke", "ok", time.perf_counter())
        self._editorIndex = index

    def undo(self):
        """Undo the page's last change, whether a stroke in the views or a Logic tool."""
        if not self._history:
            raise ValueError("Nothing to undo")
        entry = self._history.pop()
        if entry == TRAME_EDIT:
            self._undoing = True
            try:
                self.editorUndo.undo()
            finally:
                self._undoing = False
        else:
            self.logic.undo(self.segmentation)

    # Start -----------------------------------------------------------------------------------------------------

    def showVolume(self, volumeNode):
        """Show a volume in the slice views (background layer) and select it."""
        display = self.slicerApp.display_manager
        display.show_volume_in_slice_background(volumeNode)
        display.reset_views()
        self.refreshNodes()
        self.state.volumeId = volumeNode.GetID()
