"""Classic tools panel, all through the Logic: threshold (range or an automatic method), grow from seeds with a
preview (the visible segments are the seeds, as in the Segment Editor), island clean-up; then every other registered
classic tool, generated from its declaration (GeneratedTools.py)."""

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from AISegmentationLib.Classic.Threshold.Threshold import AUTO_THRESHOLD_METHODS, AUTO_THRESHOLD_MODES

from .GeneratedTools import GeneratedTools
from .Layout import actionButton


class ClassicPanel:
    title, key = "Classic tools", "classic"

    def __init__(self, page):
        self.page = page
        self.growSession = None
        state, ctrl = page.state, page.ctrl
        state.thresholdMin, state.thresholdMax = 200.0, 3071.0
        state.autoMethod, state.autoMode = "Otsu", "SET_LOWER_MAX"
        state.seedLocality, state.growPreview = 0.0, False
        state.minimumIslandSize = 1000
        ctrl.threshold = page.action("threshold", edits=True)(self.threshold)
        ctrl.autoRange = page.action("auto threshold range")(self.autoRange)
        ctrl.growPreview = page.action("grow from seeds preview")(self.growPreview)
        ctrl.growApply = page.action("grow from seeds apply", edits=True)(self.growApply)
        ctrl.growCancel = page.action("grow from seeds cancel")(self.growCancel)
        ctrl.keepLargest = page.action("keep largest island", edits=True)(self.keepLargest)
        ctrl.removeSmall = page.action("remove small islands", edits=True)(self.removeSmall)
        self.generated = GeneratedTools(page)

    def buildUi(self):
        ctrl = self.page.ctrl
        html.Div("Threshold", classes="text-subtitle-2")
        with html.Div(classes="d-flex"):
            v3.VTextField(label="Minimum", v_model_number=("thresholdMin",), type="number", density="compact",
                          hide_details=True, id="threshold-min", classes="mr-1")
            v3.VTextField(label="Maximum", v_model_number=("thresholdMax",), type="number", density="compact",
                          hide_details=True, id="threshold-max")
        actionButton("Apply threshold", ctrl.threshold, "threshold-apply")
        with html.Div(classes="d-flex"):
            v3.VSelect(label="Auto method", items=("autoMethods", list(AUTO_THRESHOLD_METHODS)),
                       v_model=("autoMethod",), density="compact", hide_details=True, id="auto-method",
                       classes="mr-1")
            v3.VSelect(label="Mode", items=("autoModes", list(AUTO_THRESHOLD_MODES)), v_model=("autoMode",),
                       density="compact", hide_details=True, id="auto-mode")
        actionButton("Auto range", ctrl.autoRange, "threshold-auto")
        html.Div("Grow from seeds (visible segments are the seeds)", classes="text-subtitle-2 mt-2")
        v3.VTextField(label="Seed locality", v_model_number=("seedLocality",), type="number", density="compact",
                      hide_details=True, id="seed-locality")
        actionButton("Preview", ctrl.growPreview, "grow-preview")
        actionButton("Apply", ctrl.growApply, "grow-apply", disabled=("!growPreview",))
        actionButton("Cancel", ctrl.growCancel, "grow-cancel", disabled=("!growPreview",))
        html.Div("Islands", classes="text-subtitle-2 mt-2")
        v3.VTextField(label="Minimum island size (voxels)", v_model_number=("minimumIslandSize",), type="number",
                      density="compact", hide_details=True, id="island-size")
        actionButton("Keep largest", ctrl.keepLargest, "keep-largest")
        actionButton("Remove small", ctrl.removeSmall, "remove-small")
        self.generated.buildUi()

    def threshold(self):
        volume, segmentation, segmentId = self.page.requireSegmentId()
        state = self.page.state
        self.page.logic.threshold(volume, segmentation, segmentId, state.thresholdMin, state.thresholdMax)

    def autoRange(self):
        state = self.page.state
        if self.page.volume is None:
            raise ValueError("Load a volume first")
        low, high = self.page.logic.autoThresholdRange(self.page.volume, state.autoMethod, state.autoMode,
                                                       (state.thresholdMin, state.thresholdMax))
        state.thresholdMin, state.thresholdMax = round(float(low), 3), round(float(high), 3)

    def growPreview(self):
        volume, segmentation = self.page.requireVolumeAndSegmentation()
        logic = self.page.logic
        if self.growSession is not None and self.growSession.segmentationNode is segmentation:
            self.growSession.seedLocalityFactor = self.page.state.seedLocality
            self.growSession.update()
        else:
            self.growSession = logic.growFromSeeds(volume, segmentation, logic.visibleSegmentIds(segmentation),
                                                   self.page.state.seedLocality)
        logic.showGrowFromSeedsPreview(self.growSession)
        self.page.state.growPreview = True

    def growApply(self):
        if self.growSession is None:
            raise ValueError("Start a preview first")
        self.page.logic.removeGrowFromSeedsPreview()
        session, self.growSession = self.growSession, None
        self.page.state.growPreview = False
        session.apply()

    def growCancel(self):
        self.page.logic.removeGrowFromSeedsPreview()
        if self.growSession is not None:
            self.growSession.cancel()
        self.growSession = None
        self.page.state.growPreview = False

    def keepLargest(self):
        volume, segmentation, segmentId = self.page.requireSegmentId()
        self.page.logic.keepLargestIsland(volume, segmentation, segmentId)

    def removeSmall(self):
        volume, segmentation, segmentId = self.page.requireSegmentId()
        self.page.logic.removeSmallIslands(volume, segmentation, segmentId, self.page.state.minimumIslandSize)
