"""AI panel: the backends and their options, generated from the backends' declarations (like the Slicer panel and
the command line), a run as a Logic job with progress, its log and Cancel; the result becomes the page's
segmentation."""

import asyncio
import logging
import time

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Backends.Options import listSeparator, parseText

from .Layout import actionButton

POLL_SECONDS = 0.5


def optionSpec(option):
    """What the page needs to draw one option's editor (JSON-friendly)."""
    return {"name": option.name, "label": option.label + (f" ({option.unit})" if option.unit else ""),
            "type": option.type, "help": option.help, "choices": [str(c) for c in option.choices],
            "multiple": option.multiple, "required": option.required, "secret": option.secret}


def defaultText(option):
    if option.default is None:
        return False if option.type == "bool" else ""
    if option.type == "bool":
        return bool(option.default)
    if isinstance(option.default, (list, tuple)):
        return listSeparator(option).join(map(str, option.default))
    return str(option.default)


def optionValue(option, value):
    """The option's value from what the page holds (text, or a bool from a checkbox); None when left empty."""
    if option.type == "bool":
        return bool(value)
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    if option.multiple:
        return [parseText(option, item) for item in text.split(listSeparator(option)) if item.strip()]
    return parseText(option, text)


class AiPanel:
    title, key = "AI", "ai"

    def __init__(self, page):
        self.page = page
        self.job = None
        state, ctrl = page.state, page.ctrl
        logic = page.logic
        state.aiBackends = [{"title": logic.backend(name).title, "value": name} for name in logic.backendNames()]
        state.aiBackend = logic.backendNames()[0]
        state.aiRunning, state.aiProgress, state.aiMessage, state.aiLog = False, 0.0, "", ""
        state.aiHelp = ""
        self._onBackend(state.aiBackend)
        state.change("aiBackend")(self._onBackend)
        ctrl.aiRun = self.run
        ctrl.aiCancel = page.action("AI cancel")(self.cancel)
        ctrl.aiInstall = page.action("AI environment start")(self.install)

    def buildUi(self):
        ctrl = self.page.ctrl
        v3.VSelect(label="Backend", items=("aiBackends",), v_model=("aiBackend",), density="compact",
                   hide_details=True, id="ai-backend", disabled=("aiRunning",))
        html.Div("{{ aiHelp }}", classes="text-caption my-1")
        with html.Div(classes="d-flex align-center"):
            html.Span("Environment: {{ aiEnvironment }}", id="ai-environment", classes="text-caption")
            actionButton("Install / repair", ctrl.aiInstall, "ai-install", disabled=("aiRunning",))
        with html.Div(v_for="option in aiOptions", key="option.name", classes="my-1"):
            v3.VSelect(v_if="option.choices.length", label=("option.label",), items=("option.choices",),
                       v_model="aiValues[option.name]", density="compact", hide_details=True,
                       id=("`ai-option-${option.name}`",), clearable=True)
            v3.VCheckbox(v_else_if="option.type === 'bool'", label=("option.label",),
                         v_model="aiValues[option.name]", density="compact", hide_details=True,
                         id=("`ai-option-${option.name}`",))
            v3.VTextField(v_else=True, label=("option.label",), v_model="aiValues[option.name]", density="compact",
                          hide_details=True, id=("`ai-option-${option.name}`",), hint=("option.help",),
                          type=("option.secret ? 'password' : 'text'",))
        actionButton("Run", (ctrl.aiRun, "[aiValues]"), "ai-run", disabled=("aiRunning",))
        actionButton("Cancel", ctrl.aiCancel, "ai-cancel", disabled=("!aiRunning",))
        v3.VProgressLinear(model_value=("aiProgress",), height=14, id="ai-progress", classes="my-1",
                           color=("aiRunning ? 'primary' : 'success'",))
        html.Div("{{ aiMessage }}", id="ai-message", classes="text-caption")
        html.Pre("{{ aiLog }}", id="ai-log", classes="text-caption",
                 style="max-height: 120px; overflow: auto; white-space: pre-wrap;")

    def _onBackend(self, aiBackend=None, **_):
        logic, state = self.page.logic, self.page.state
        options = logic.backendOptions(aiBackend)
        state.aiOptions = [optionSpec(option) for option in options]
        state.aiValues = {option.name: defaultText(option) for option in options}
        state.aiHelp = logic.backend(aiBackend).help
        state.aiEnvironment = logic.backendEnvironmentStatus(aiBackend)

    def install(self):
        """Create or repair the backend's isolated environment (a job, followed like a run)."""
        if self.job is not None and not self.job.done:
            raise ValueError("An AI job is already going: wait for it or cancel it")
        name = self.page.state.aiBackend
        force = self.page.logic.backendEnvironmentStatus(name) == "broken"
        self.job = self.page.logic.startCreateBackendEnvironment(name, force=force)
        self._startFollowing(self.job, "AI environment", lambda _: f"Environment {self._status(name)}")

    def _status(self, name):
        self.page.state.aiEnvironment = self.page.logic.backendEnvironmentStatus(name)
        return self.page.state.aiEnvironment

    def run(self, values):
        self.page.action("AI start")(self._start)(values or {})

    def _start(self, values):
        if self.job is not None and not self.job.done:
            raise ValueError("An AI run is already going: wait for it or cancel it")
        volume = self.page.volume
        if volume is None:
            raise ValueError("Load a volume first")
        name = self.page.state.aiBackend
        options = {}
        for option in self.page.logic.backendOptions(name):
            value = optionValue(option, values.get(option.name))
            if value is not None:
                options[option.name] = value
        self.job = self.page.logic.startBackend(name, [volume], **options)
        self._startFollowing(self.job, "AI run", self._showResult)

    def _showResult(self, result):
        self.page.showSegmentation(result)
        return f"Done: '{result.GetName()}'"

    def _startFollowing(self, job, name, onResult):
        state = self.page.state
        state.aiRunning, state.aiProgress, state.aiMessage, state.aiLog = True, 0.0, "Starting", ""
        asyncio.get_event_loop().create_task(self._follow(job, name, onResult, time.perf_counter()))

    async def _follow(self, job, name, onResult, start):
        """Poll the job (progress, message, log) until it ends; then finalize it here, on the server's thread, and
        hand its result to onResult (which returns the message to show)."""
        state = self.page.state
        lines = []
        while not job.done:
            await asyncio.sleep(POLL_SECONDS)
            lines += job.takeLogLines()
            with state:
                state.aiProgress, state.aiMessage = float(job.progress), job.message
                state.aiLog = "\n".join(lines[-40:])
        outcome = "ok"
        try:
            state.aiMessage = f"{onResult(job.wait())} in {time.perf_counter() - start:.1f} s"
        except Exception as error:  # noqa: BLE001 - a failed or cancelled run is shown, not raised
            outcome = "error"
            logging.getLogger("AISegmentationWeb").info("%s ended: %s", name, error)
            state.error = str(error)
            state.aiMessage = "Cancelled" if isinstance(error, JobCancelledError) else "Failed"
        lines += job.takeLogLines()
        with state:
            state.aiRunning, state.aiProgress = False, 100.0 if outcome == "ok" else state.aiProgress
            state.aiLog = "\n".join(lines[-40:])
        self.page.finishAction(name, outcome, start)

    def cancel(self):
        if self.job is None or self.job.done:
            raise ValueError("No AI run to cancel")
        self.job.cancel()
