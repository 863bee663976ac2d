"""The Classic panel's generated part: every registered classic tool whose fronts are generated (all but the four
whose controls Classic.py writes by hand), drawn from its declaration as the AI panel draws a backend's options: a
tool selector, one editor per option, seed points (R,A,S; R,A,S...) and volumes when the tool needs them, Apply or
Preview / Apply / Cancel, the tool's actions, and progress with Cancel for a job tool."""

import asyncio
import time

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from .AiRuns import POLL_SECONDS, defaultText, optionSpec, optionValue
from .Layout import actionButton


def parsePoints(text):
    """[(R, A, S), ...] from "R,A,S; R,A,S"; ValueError for anything else."""
    points = []
    for item in (text or "").split(";"):
        if not item.strip():
            continue
        try:
            point = tuple(float(value) for value in item.split(","))
        except ValueError:
            point = ()
        if len(point) != 3:
            raise ValueError(f"Seed points are 'R,A,S' triples separated by ';', got '{item.strip()}'")
        points.append(point)
    return points


class GeneratedTools:
    def __init__(self, page):
        self.page = page
        self.session = None
        self.job = None
        state, ctrl = page.state, page.ctrl
        self.tools = {name: tool for name, tool in page.logic.classicTools().items() if not tool.handMadeFronts}
        state.classicTools = [{"title": tool.title, "value": name} for name, tool in self.tools.items()]
        state.classicTool = next(iter(self.tools), None)
        state.classicSeedPoints, state.classicVolumes = "", []
        state.classicPreview, state.classicRunning, state.classicProgress, state.classicMessage = False, False, 0, ""
        self._onTool(state.classicTool)
        state.change("classicTool")(self._onTool)
        ctrl.classicApply = self.apply
        ctrl.classicPreview = page.action("classic tool preview")(self.preview)
        ctrl.classicPreviewApply = page.action("classic tool preview apply", edits=True)(self.applyPreview)
        ctrl.classicPreviewCancel = page.action("classic tool preview cancel")(self.cancelPreview)
        ctrl.classicAction = page.action("classic tool action")(self.action)
        ctrl.classicCancel = page.action("classic tool cancel")(self.cancel)

    def _onTool(self, classicTool=None, **_):
        state = self.page.state
        tool = self.tools.get(classicTool)
        state.classicOptions = [optionSpec(option) for option in tool.options] if tool else []
        state.classicValues = {option.name: defaultText(option) for option in tool.options} if tool else {}
        state.classicSpec = {"help": tool.help if tool else "", "preview": bool(tool and tool.preview),
                             "job": bool(tool and tool.job), "actions": list(tool.actions) if tool else [],
                             "points": bool(tool and {"seedPoint", "seedPoints"} & set(tool.needs)),
                             "volumes": bool(tool and "volumes" in tool.needs)}

    def buildUi(self):
        if not self.tools:
            return
        ctrl = self.page.ctrl
        html.Div("Other tools", classes="text-subtitle-2 mt-2")
        v3.VSelect(label="Tool", items=("classicTools",), v_model=("classicTool",), density="compact",
                   hide_details=True, id="classic-tool", disabled=("classicRunning || classicPreview",))
        html.Div("{{ classicSpec.help }}", classes="text-caption my-1")
        with html.Div(v_for="option in classicOptions", key="option.name", classes="my-1"):
            v3.VSelect(v_if="option.choices.length", label=("option.label",), items=("option.choices",),
                       v_model="classicValues[option.name]", density="compact", hide_details=True,
                       id=("`classic-option-${option.name}`",))
            v3.VCheckbox(v_else_if="option.type === 'bool'", label=("option.label",),
                         v_model="classicValues[option.name]", density="compact", hide_details=True,
                         id=("`classic-option-${option.name}`",))
            v3.VTextField(v_else=True, label=("option.label",), v_model="classicValues[option.name]",
                          density="compact", hide_details=True, id=("`classic-option-${option.name}`",),
                          hint=("option.help",))
        v3.VTextField(v_if="classicSpec.points", label="Seed points (R,A,S; R,A,S)", v_model=("classicSeedPoints",),
                      density="compact", hide_details=True, id="classic-seed-points")
        v3.VSelect(v_if="classicSpec.volumes", label="Volumes", items=("volumes",), v_model=("classicVolumes",),
                   multiple=True, density="compact", hide_details=True, id="classic-volumes")
        with html.Div(v_if="classicSpec.preview"):
            actionButton("Preview", (ctrl.classicPreview, "[classicValues]"), "classic-preview")
            actionButton("Apply", ctrl.classicPreviewApply, "classic-preview-apply", disabled=("!classicPreview",))
            actionButton("Cancel", ctrl.classicPreviewCancel, "classic-preview-cancel",
                         disabled=("!classicPreview",))
        actionButton("Apply", (ctrl.classicApply, "[classicValues]"), "classic-apply", v_else=True,
                     disabled=("classicRunning",))
        v3.VBtn("{{ action }}", v_for="action in classicSpec.actions", key="action",
                click=(ctrl.classicAction, "[action, classicValues]"), id=("`classic-action-${action}`",),
                size="small", variant="tonal", classes="ma-1")
        with html.Div(v_if="classicSpec.job"):
            actionButton("Cancel", ctrl.classicCancel, "classic-cancel", disabled=("!classicRunning",))
            v3.VProgressLinear(model_value=("classicProgress",), height=10, id="classic-progress", classes="my-1")
            html.Div("{{ classicMessage }}", id="classic-message", classes="text-caption")

    def _request(self, values):
        """(tool, volume, segmentation, inputs, options) from the page."""
        state, logic = self.page.state, self.page.logic
        tool = self.tools.get(state.classicTool)
        if tool is None:
            raise ValueError("Choose a tool first")
        volume, segmentation = self.page.requireVolumeAndSegmentation()
        inputs = {}
        if "segment" in tool.needs:
            inputs["segmentId"] = self.page.requireSegmentId()[2]
        if "seedSegments" in tool.needs:
            inputs["seedSegmentIds"] = logic.visibleSegmentIds(segmentation)
        if {"seedPoint", "seedPoints"} & set(tool.needs):
            inputs["seedPoints"] = parsePoints(state.classicSeedPoints)
        if "volumes" in tool.needs:
            inputs["volumes"] = [self.page.node(nodeId) for nodeId in state.classicVolumes or []]
        options = {}
        for option in tool.options:
            value = optionValue(option, (values or {}).get(option.name))
            if value is not None:
                options[option.name] = value
        return tool, volume, segmentation, inputs, options

    def apply(self, values):
        tool = self.tools.get(self.page.state.classicTool)
        if tool is not None and tool.job:
            return self.page.action("classic tool start")(self._start)(values)
        return self.page.action("classic tool", edits=True)(self._run)(values)

    def _run(self, values):
        tool, volume, segmentation, inputs, options = self._request(values)
        self.page.logic.runClassicTool(tool.name, volume, segmentation, **inputs, **options)

    def _start(self, values):
        if self.job is not None and not self.job.done:
            raise ValueError("A tool is already running: wait for it or cancel it")
        tool, volume, segmentation, inputs, options = self._request(values)
        self.job = self.page.logic.startClassicTool(tool.name, volume, segmentation, **inputs, **options)
        state = self.page.state
        state.classicRunning, state.classicProgress, state.classicMessage = True, 0, "Starting"
        asyncio.get_event_loop().create_task(self._follow(self.job, tool.title, time.perf_counter()))

    async def _follow(self, job, title, start):
        """Poll the job; then write its result here, on the server's thread (job.wait())."""
        state = self.page.state
        while not job.done:
            await asyncio.sleep(POLL_SECONDS)
            with state:
                state.classicProgress, state.classicMessage = float(job.progress), job.message
        outcome = "ok"
        try:
            job.wait()
            state.classicMessage = f"Done in {time.perf_counter() - start:.1f} s"
        except Exception as error:  # noqa: BLE001 - a failed or cancelled run is shown, not raised
            outcome, state.error, state.classicMessage = "error", str(error), "Failed or cancelled"
        with state:
            state.classicRunning = False
        self.page.finishAction(title, outcome, start)

    def cancel(self):
        if self.job is None or self.job.done:
            raise ValueError("No tool is running")
        self.job.cancel()

    def action(self, action, values):
        tool, volume, segmentation, inputs, options = self._request(values)
        found = self.page.logic.classicToolAction(tool.name, action, volume, segmentation, inputs.get("segmentId"),
                                                  **options)
        self.page.state.classicValues = {**self.page.state.classicValues, **{k: str(v) for k, v in found.items()}}

    def preview(self, values):
        tool, volume, segmentation, inputs, options = self._request(values)
        self.cancelPreview()
        self.session = self.page.logic.startClassicPreview(tool.name, volume, segmentation, **inputs, **options)
        self.page.logic.showClassicPreview(self.session)
        self.page.state.classicPreview = True

    def applyPreview(self):
        if self.session is None:
            raise ValueError("Start a preview first")
        self.page.logic.removeClassicPreview()
        session, self.session = self.session, None
        self.page.state.classicPreview = False
        session.apply()

    def cancelPreview(self):
        self.page.logic.removeClassicPreview()
        if self.session is not None:
            self.session.cancel()
        self.session = None
        self.page.state.classicPreview = False
