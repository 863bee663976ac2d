"""Segments panel: the segment table (voxels and volume from the Logic), adding a segment, and trame-slicer's own
editor effects in the views — paint, erase, scissors — with the brush size."""

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from .Layout import actionButton, dataAttributes

TOOLS = ("none", "paint", "erase", "scissors")


def _effectTypes():
    from trame_slicer.segmentation import (SegmentationEffectErase, SegmentationEffectNoTool,
                                           SegmentationEffectPaint, SegmentationEffectScissors)

    return {"none": SegmentationEffectNoTool, "paint": SegmentationEffectPaint, "erase": SegmentationEffectErase,
            "scissors": SegmentationEffectScissors}


class EditingPanel:
    title, key = "Segments and editor", "segments"

    def __init__(self, page):
        self.page = page
        state, ctrl = page.state, page.ctrl
        state.newSegmentName, state.tool, state.brushDiameterMm = "segment", "none", 10.0
        ctrl.addSegment = page.action("add segment")(self.addSegment)
        state.change("tool")(self._onTool)
        state.change("brushDiameterMm")(self._onBrush)

    def buildUi(self):
        with v3.VTable(density="compact", id="segment-table"):
            with html.Tbody():
                with html.Tr(v_for="row in segments", key="row.id", click="segmentId = row.id",
                             style=("row.id === segmentId ? 'background: rgba(255,255,255,0.12)' : ''",),
                             data_segment=("row.name",), data_voxels=("row.voxels",),
                             **dataAttributes("data_segment", "data_voxels")):
                    with html.Td():
                        html.Span(style=("`display:inline-block;width:14px;height:14px;background:${row.color}`",))
                    html.Td("{{ row.name }}")
                    html.Td("{{ row.voxels }} vx", classes="text-right")
                    html.Td("{{ row.volumeMl }} mL", classes="text-right")
        with html.Div(classes="d-flex align-center"):
            v3.VTextField(label="New segment", v_model=("newSegmentName",), density="compact", hide_details=True,
                          id="new-segment-name")
            actionButton("Add", (self.page.ctrl.addSegment, "[newSegmentName]"), "add-segment")  # name at the click
        with v3.VBtnToggle(v_model=("tool",), mandatory=True, density="compact", classes="my-1", id="tool"):
            for tool in TOOLS:
                v3.VBtn(tool.capitalize(), value=tool, id=f"tool-{tool}", size="small")
        v3.VSlider(label="Brush (mm)", v_model=("brushDiameterMm",), min=1, max=50, step=1, thumb_label=True,
                   density="compact", hide_details=True, id="brush")

    def addSegment(self, name=None):
        _, segmentation = self.page.requireVolumeAndSegmentation()
        name = name if name is not None else self.page.state.newSegmentName
        segmentId = self.page.logic.addSegment(segmentation, str(name or "").strip())
        self.page.refreshSegments()
        self.page.state.segmentId = segmentId

    def _onTool(self, tool="none", **_):
        self.page.action(f"tool {tool}")(self._activate)(tool)

    def _activate(self, tool):
        if tool not in TOOLS:
            raise ValueError(f"Unknown tool '{tool}'")
        if tool != "none":
            self.page.requireSegmentId()
        self.page.bindEditor()
        effect = self.page.editor.set_active_effect_type(_effectTypes()[tool])
        if tool in ("paint", "erase"):
            self._applyBrush(effect)

    def _onBrush(self, **_):
        effect = self.page.editor.active_effect
        if effect is not None and hasattr(effect, "set_brush_diameter"):
            self._applyBrush(effect)

    def _applyBrush(self, effect):
        from trame_slicer.segmentation import BrushDiameterMode

        effect.set_brush_diameter(float(self.page.state.brushDiameterMm), BrushDiameterMode.Absolute)
