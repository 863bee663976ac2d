"""What every panel section shares: the module widget's ui, Logic and parameter node."""

from slicer.i18n import tr as _


class PanelSection:
    """One section of the module panel: wiring only (its widgets <-> the parameter node, buttons -> Logic calls).

    The module widget (AISegmentationWidget) creates the sections after loading the .ui and the Logic, calls
    setup() once, onParameterNodeReplaced() when another parameter node is shown,
    onParameterNodeModified() after every change of the panel state, onSceneStartClose() when the
    scene is about to close and cleanup() when the module is unloaded."""

    def __init__(self, widget):
        self.widget = widget
        self.ui = widget.ui
        self.logic = widget.logic

    @property
    def _parameterNode(self):
        return self.widget.parameterNode

    def _inputs(self):
        return self.widget.inputs()

    def setup(self):
        pass

    def onParameterNodeReplaced(self):
        pass

    def onParameterNodeModified(self, parameterNode):
        pass

    def onSceneStartClose(self):
        pass

    def cleanup(self):
        pass


def requireNode(node, what):
    if node is None:
        raise ValueError(_("Select or place a {what} first.").format(what=what))
    return node
