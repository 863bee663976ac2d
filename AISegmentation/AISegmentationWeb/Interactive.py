"""nnInteractive panel: the server (URL, API key), a session on the selected segment, and point prompts placed by
clicking in a slice view (positive or negative), with the Logic's prompt undo and reset.

Only the servers the operator allows can be reached, and the operator's API key goes only to its own address
(InteractiveAccess). A key typed on the page stays in that browser (client-only state) and reaches the server as an
argument of Connect, never in the shared state that other tabs receive."""

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from AISegmentationLib.Consent import ConsentStore

from .Layout import actionButton


def clickRas(sliceNode, interactor):
    """RAS position (mm) of the interactor's last event in a slice view."""
    x, y = interactor.GetEventPosition()
    ras = sliceNode.GetXYToRAS().MultiplyPoint((float(x), float(y), 0.0, 1.0))
    return [ras[0], ras[1], ras[2]]


class InteractivePanel:
    title, key = "nnInteractive", "interactive"

    def __init__(self, page):
        self.page = page
        self._observers = []
        page.logic.setInteractiveConsentStore(ConsentStore(None))  # consent lasts as long as the server process
        state, ctrl = page.state, page.ctrl
        servers = page.interactiveServers
        state.interactiveUrl, state.interactiveApiKey = servers.urls[0], ""
        state.interactiveServers = servers.urls
        state.client_only("interactiveApiKey")
        state.interactiveStatus, state.interactiveClicks, state.interactivePositive = "", False, True
        page.server.trigger("interactiveConnect")(page.action("nnInteractive connect")(self.connect))
        ctrl.interactiveStart = page.action("nnInteractive start")(self.start)
        ctrl.interactiveUndo = page.action("nnInteractive undo")(self.page.logic.interactiveUndo)
        ctrl.interactiveReset = page.action("nnInteractive reset")(self.page.logic.interactiveReset)
        state.change("interactiveClicks")(self._onClickMode)

    def buildUi(self):
        ctrl = self.page.ctrl
        v3.VTextField(label="Server URL", v_model=("interactiveUrl",), density="compact", hide_details=True,
                      id="interactive-url")
        html.Div("Allowed: {{ interactiveServers.join(', ') }}", classes="text-caption", id="interactive-allowed")
        v3.VTextField(label="API key (current server)", v_model=("interactiveApiKey",), type="password",
                      density="compact", hide_details=True, id="interactive-key")
        actionButton("Connect", "trigger('interactiveConnect', [interactiveUrl, interactiveApiKey])",
                     "interactive-connect")
        actionButton("Start on segment", ctrl.interactiveStart, "interactive-start")
        html.Div("{{ interactiveStatus }}", classes="text-caption", id="interactive-status")
        v3.VSwitch(label="Click in a slice view adds a point", v_model=("interactiveClicks",), density="compact",
                   hide_details=True, id="interactive-clicks")
        v3.VSwitch(label=("interactivePositive ? 'Positive' : 'Negative'",), v_model=("interactivePositive",),
                   density="compact", hide_details=True, id="interactive-positive")
        actionButton("Undo prompt", ctrl.interactiveUndo, "interactive-undo")
        actionButton("Reset", ctrl.interactiveReset, "interactive-reset")

    def connect(self, url=None, pageKey=None):
        """Connect to an allowed server with the page user's key, or the operator's for its own address."""
        state, logic = self.page.state, self.page.logic
        url, apiKey = self.page.interactiveServers.settingsFor(url, pageKey)
        logic.setInteractiveServer(url, apiKey=apiKey)
        logic.allowInteractiveServer(url)  # chosen and connected by the user: consent, this session
        ok, message, _ = logic.testInteractiveConnection()
        state.interactiveStatus = message
        if not ok:
            raise ValueError(message)

    def start(self):
        volume, segmentation, segmentId = self.page.requireSegmentId()
        self.page.logic.startInteractiveSegmentation(volume, segmentation, segmentId)
        self.page.state.interactiveStatus = "Session started: click in a slice view with the switch on"

    def _onClickMode(self, interactiveClicks=False, **_):
        for interactor, tag in self._observers:
            interactor.RemoveObserver(tag)
        self._observers = []
        if not interactiveClicks:
            return
        self.page.editor.deactivate_effect()
        self.page.state.tool = "none"
        for view in self.page.slicerApp.view_manager.get_slice_views():
            sliceNode = self.page.scene.GetNodeByID(view.get_view_node_id())
            interactor = view.interactor()
            tag = interactor.AddObserver("LeftButtonPressEvent", self._clickHandler(sliceNode, interactor), 10.0)
            self._observers.append((interactor, tag))

    def _clickHandler(self, sliceNode, interactor):
        def onClick(*_):
            self.page.action("nnInteractive point", edits=True)(self.page.logic.interactivePoint)(
                clickRas(sliceNode, interactor), positive=bool(self.page.state.interactivePositive))

        return onClick
