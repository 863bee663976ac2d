"""The Compare section: Dice, Jaccard, volumes, Hausdorff, ASSD, surface Dice for one segment pair or all pairs, on
GPU or CPU; the table, its CSV export, and the error and surface-distance maps."""

import slicer
from slicer.i18n import tr as _

from AISegmentationLib.JobRunner import JobCancelledError

from .Section import PanelSection, requireNode


class ComparisonSection(PanelSection):
    def __init__(self, widget):
        super().__init__(widget)
        self._comparisonRows = None
        self._comparisonCancelled = False

    def setup(self):
        self.ui.comparisonReferenceSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.comparisonReferenceSegmentSelector.setCurrentNode)
        self.ui.comparisonComparedSelector.connect(
            "currentNodeChanged(vtkMRMLNode*)", self.ui.comparisonComparedSegmentSelector.setCurrentNode)
        self.ui.compareButton.connect("clicked(bool)", self.onCompare)
        self.ui.exportComparisonCsvButton.connect("clicked(bool)", self.onExportComparisonCsv)
        self.ui.comparisonMapsButton.connect("clicked(bool)", self.onComparisonMaps)

    def onSceneStartClose(self):
        self._comparisonCancelled = True  # a comparison running (its progress repaints the GUI) stops there

    def onCompare(self):
        # Progress repaints the GUI (processEvents): no writing control can be pressed while it runs (the Logic
        # refuses writes meanwhile too), and closing the scene cancels it.
        self.widget.setWritingControlsEnabled(False)
        self._comparisonCancelled = False
        try:
            with slicer.util.tryWithErrorDisplay(_("Comparison failed."), waitCursor=True):
                p = self._parameterNode
                pairs = None
                if not p.compareAllSegments:
                    referenceId = self.ui.comparisonReferenceSegmentSelector.currentSegmentID()
                    comparedId = self.ui.comparisonComparedSegmentSelector.currentSegmentID()
                    if not referenceId or not comparedId:
                        raise ValueError(_("Select a reference and a compared segment, or compare all segments."))
                    pairs = [(referenceId, comparedId)]
                self._comparisonRows, p.comparisonTable = self.logic.compareSegmentations(
                    p.comparisonReference, p.comparisonCompared, pairs, tableNode=p.comparisonTable,
                    progressCallback=self._showComparisonProgress, match=p.comparisonMatch,
                    mapping=p.comparisonMapping or None, device=p.comparisonDevice, hausdorff95Mode=p.hausdorff95Mode,
                    surfaceDiceTolerance=p.surfaceDiceTolerance, hausdorffPercentile=p.hausdorffPercentile)
                self.ui.comparisonTableView.setMRMLTableNode(p.comparisonTable)
        finally:
            self.widget.setWritingControlsEnabled(True)

    def _showComparisonProgress(self, fraction, message):
        self.ui.comparisonProgressBar.setValue(int(round(100 * fraction)))
        self.ui.comparisonProgressBar.setFormat(message)
        slicer.app.processEvents()
        if self._comparisonCancelled:
            raise JobCancelledError(_("The comparison was cancelled: the scene was closed."))

    def onExportComparisonCsv(self):
        import qt

        with slicer.util.tryWithErrorDisplay(_("Export failed."), waitCursor=False):
            if not self._comparisonRows:
                raise ValueError(_("Compute a comparison first."))
            path = qt.QFileDialog.getSaveFileName(None, _("Export comparison"), "comparison.csv", "CSV (*.csv)")
            if path:
                self.logic.saveComparisonCsv(self._comparisonRows, path)

    def onComparisonMaps(self):
        """Error map (a segmentation, in the slice views) and surface-distance maps (models, in the 3D view)."""
        with slicer.util.tryWithErrorDisplay(_("Comparison maps failed."), waitCursor=True):
            p = self._parameterNode
            reference = requireNode(p.comparisonReference, _("reference segmentation"))
            compared = requireNode(p.comparisonCompared, _("compared segmentation"))
            mapping = p.comparisonMapping or None
            self.logic.comparisonErrorMap(reference, compared, match=p.comparisonMatch, mapping=mapping)
            self.logic.comparisonDistanceMap(reference, compared, match=p.comparisonMatch, mapping=mapping)
