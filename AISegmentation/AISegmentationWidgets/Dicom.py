"""The Inputs section's DICOM buttons: a DICOM SEG or RTSTRUCT on the source volume's series in, the segmentation out
as DICOM SEG or RTSTRUCT referencing that series."""

import slicer
from slicer.i18n import tr as _

from .Section import PanelSection, requireNode


class DicomSection(PanelSection):
    def setup(self):
        self.ui.loadDicomSegmentationButton.connect("clicked(bool)", self.onLoadDicomSegmentation)
        self.ui.saveDicomSegButton.connect("clicked(bool)", lambda: self.onSaveAsDicom("SEG"))
        self.ui.saveRtStructButton.connect("clicked(bool)", lambda: self.onSaveAsDicom("RTSTRUCT"))

    def onLoadDicomSegmentation(self):
        """A DICOM SEG or RTSTRUCT file on the source volume's DICOM series becomes the panel's segmentation."""
        import qt

        with slicer.util.tryWithErrorDisplay(_("Loading DICOM SEG / RTSTRUCT failed."), waitCursor=False):
            volume = requireNode(self._parameterNode.sourceVolume, _("source volume loaded from a DICOM series"))
            path = qt.QFileDialog.getOpenFileName(None, _("Load DICOM SEG / RTSTRUCT"), "",
                                                  "DICOM (*.dcm);;All files (*)")
            if path:
                self._parameterNode.segmentation = self.logic.loadSegmentation(path, sourceSeries=volume)

    def onSaveAsDicom(self, kind):
        """The segmentation as a DICOM SEG or RTSTRUCT referencing the source volume's DICOM series."""
        import qt

        with slicer.util.tryWithErrorDisplay(_("Saving as DICOM failed."), waitCursor=False):
            p = self._parameterNode
            segmentation = requireNode(p.segmentation, _("segmentation"))
            volume = requireNode(p.sourceVolume, _("source volume loaded from a DICOM series"))
            path = qt.QFileDialog.getSaveFileName(None, _("Save as DICOM {kind}").format(kind=kind),
                                                  f"{segmentation.GetName()}_{kind.lower()}.dcm", "DICOM (*.dcm)")
            if path:
                export = self.logic.exportDicomSeg if kind == "SEG" else self.logic.exportRtStruct
                export(segmentation, volume, path)
