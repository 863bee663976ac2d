"""The Classic section's generated part: one group box per classic tool whose fronts are generated (every tool but
the four whose controls the .ui holds), built from its declaration: an editor per option, a selector per need (seed
points, several volumes), Apply, the tool's actions, Preview / Apply / Cancel for a preview tool, progress and Cancel
for a job tool. The option values are kept in the parameter node (classicOptions, JSON {tool: {option: value}})."""

import json

import slicer
from slicer.i18n import tr as _

from .OptionEditors import optionEditor, optionValue


class ToolBox:
    """One tool's group box in the Classic section; section: the ClassicSection (widget, ui, logic)."""

    def __init__(self, section, tool):
        self.section, self.tool = section, tool
        self.logic = section.logic
        self._editors = {}
        self._session = None
        self._pointsSelector = None
        self._volumesSelector = None
        self._applyButton = None

    def build(self, layout):
        import qt

        box = qt.QGroupBox(self.tool.title)
        box.toolTip = self.tool.help
        form = qt.QFormLayout(box)
        saved = self.section.savedToolOptions().get(self.tool.name, {})
        for option in self.tool.options:
            kind, editor = optionEditor(option, saved.get(option.name, option.default), self._saveOptions)
            form.addRow(option.label + ":", editor)
            self._editors[option.name] = (option, kind, editor)
        if {"seedPoint", "seedPoints"} & set(self.tool.needs):
            self._pointsSelector = self._nodeSelector("qMRMLNodeComboBox", "vtkMRMLMarkupsFiducialNode",
                                                      _("Seed points (a markups point list)"))
            form.addRow(_("Seed points:"), self._pointsSelector)
        if "volumes" in self.tool.needs:
            self._volumesSelector = self._nodeSelector("qMRMLCheckableNodeComboBox", "vtkMRMLScalarVolumeNode",
                                                       _("The other volumes the tool needs (see its help)"))
            form.addRow(_("Volumes:"), self._volumesSelector)
        buttons = qt.QHBoxLayout()
        if self.tool.preview:
            self._button(buttons, _("Preview"), self.onPreview, _("Compute (again) and show the result as a preview"))
            self._button(buttons, _("Apply"), self.onApplyPreview, _("Write the preview into the segments"))
            self._button(buttons, _("Cancel"), self.onCancelPreview, _("Drop the preview"))
        else:
            self._applyButton = self._button(buttons, _("Apply"), self.onApply, self.tool.help)
        for action in self.tool.actions:
            self._button(buttons, action[0].upper() + action[1:], lambda checked=False, action=action:
                         self.onAction(action), _("Fill the options from the image ({action})").format(action=action))
        form.addRow(buttons)
        if self.tool.job:
            self._progressBar, self._log = qt.QProgressBar(), qt.QPlainTextEdit()
            self._log.readOnly, self._log.maximumHeight = True, 60
            form.addRow(self._progressBar)
            form.addRow(self._log)
            self._button(buttons, _("Cancel"), self.section.widget.jobs.cancel, _("Stop the running tool"))
        layout.addWidget(box)
        return box

    def _nodeSelector(self, className, nodeType, toolTip):
        selector = getattr(slicer, className)()
        selector.nodeTypes = [nodeType]
        selector.noneEnabled = True
        selector.addEnabled = selector.removeEnabled = False
        selector.setMRMLScene(slicer.mrmlScene)
        selector.toolTip = toolTip
        return selector

    @staticmethod
    def _button(layout, text, slot, toolTip):
        import qt

        button = qt.QPushButton(text)
        button.toolTip = toolTip
        button.connect("clicked(bool)", slot)
        layout.addWidget(button)
        return button

    def _options(self):
        return {name: optionValue(*entry) for name, entry in self._editors.items()}

    def _saveOptions(self, *args):
        values = {}
        for name, (option, kind, editor) in self._editors.items():
            try:
                values[name] = optionValue(option, kind, editor)
            except ValueError:
                pass  # text being typed: the last valid value stays saved
        self.section.saveToolOptions(self.tool.name, values)

    def _inputs(self):
        """The keyword inputs of Logic.runClassicTool that the tool needs, from the panel."""
        volume, segmentation, segmentId = self.section.widget.inputs()
        inputs = {"segmentId": segmentId}
        if "seedSegments" in self.tool.needs:
            inputs["seedSegmentIds"] = self.logic.visibleSegmentIds(segmentation)
        if self._pointsSelector is not None:
            node = self._pointsSelector.currentNode()
            if node is None or node.GetNumberOfControlPoints() == 0:
                raise ValueError(_("Select a point list with at least one seed point first."))
            inputs["seedPoints"] = [node.GetNthControlPointPositionWorld(index)
                                    for index in range(node.GetNumberOfControlPoints())]
        if self._volumesSelector is not None:
            inputs["volumes"] = list(self._volumesSelector.checkedNodes())
        return volume, segmentation, inputs

    def onApply(self):
        with slicer.util.tryWithErrorDisplay(_("{tool} failed.").format(tool=self.tool.title), waitCursor=True):
            volume, segmentation, inputs = self._inputs()
            if self.tool.job:
                self.section.widget.jobs.requireNoJob()
                job = self.logic.startClassicTool(self.tool.name, volume, segmentation, **inputs, **self._options())
                view = (self._progressBar, self._log, [button for button in (self._applyButton,) if button])
                self.section.widget.jobs.start(job, lambda result: None, view)
            else:
                self.logic.runClassicTool(self.tool.name, volume, segmentation, **inputs, **self._options())

    def onAction(self, action):
        with slicer.util.tryWithErrorDisplay(_("{tool} failed.").format(tool=self.tool.title), waitCursor=True):
            volume, segmentation, segmentId = self.section.widget.inputs()
            found = self.logic.classicToolAction(self.tool.name, action, volume, segmentation, segmentId,
                                                 **self._options())
            for name, value in found.items():
                option, kind, editor = self._editors[name]
                if kind == "number":
                    editor.value = value
                elif kind == "choice":
                    editor.currentText = str(value)

    def onPreview(self):
        with slicer.util.tryWithErrorDisplay(_("{tool} preview failed.").format(tool=self.tool.title),
                                             waitCursor=True):
            volume, segmentation, inputs = self._inputs()
            self.onCancelPreview()
            self._session = self.logic.startClassicPreview(self.tool.name, volume, segmentation, **inputs,
                                                           **self._options())
            self.logic.showClassicPreview(self._session)

    def onApplyPreview(self):
        with slicer.util.tryWithErrorDisplay(_("Applying {tool} failed.").format(tool=self.tool.title),
                                             waitCursor=True):
            if self._session is None:
                raise ValueError(_("Preview first."))
            self._session.apply()
            self.onCancelPreview()

    def onCancelPreview(self):
        if self._session is not None:
            self._session.cancel()
            self.logic.removeClassicPreview()
            self._session = None


def savedOptions(text):
    """{tool: {option: value}} from the parameter node's JSON text ({} when empty or not valid)."""
    try:
        saved = json.loads(text or "{}")
    except ValueError:
        saved = {}
    return saved if isinstance(saved, dict) else {}
