"""Files panel: the sample CT, uploads and server paths (volumes or DICOM series folders, .seg.nrrd segmentations,
label maps, DICOM SEG / RTSTRUCT files on the loaded DICOM series), a new segmentation, and downloads of the
segmentation (.seg.nrrd, DICOM SEG, RTSTRUCT) and its label map — all through the Logic's I/O."""

import os
import tempfile

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from AISegmentationLib.SampleData import fetchSampleFile

from .Access import requireUploadSize
from .Layout import actionButton
from .ServerFiles import readInWorker, requireReadableFiles

KINDS = [{"title": "Volume (NRRD, NIfTI, MHA)", "value": "volume"},
         {"title": "Segmentation (.seg.nrrd)", "value": "segmentation"},
         {"title": "Label map (values become segments)", "value": "labelmap"},
         {"title": "DICOM SEG / RTSTRUCT (on the loaded DICOM series)", "value": "dicomSegmentation"}]
SAMPLE_FILE = "example_ct.nii.gz"
UPLOAD_CHECK = ("(files) => { const list = files ? [].concat(files) : []; "
                "const size = list.reduce((total, file) => total + file.size, 0); "
                "if (size > maxUploadBytes) { trigger('uploadRefused', [list.map(f => f.name).join(', '), size]); "
                "uploads = null; } else { uploads = files; } }")


class FilesPanel:
    title, key = "Files", "files"

    def __init__(self, page):
        self.page = page
        state, ctrl = page.state, page.ctrl
        state.fileKind, state.serverPath, state.uploads = "volume", "", None
        state.newSegmentationName = "Segmentation"
        ctrl.loadSample = page.action("load sample")(self.loadSample)
        ctrl.loadServerPath = page.action("load path")(self.loadServerPath)
        ctrl.loadStartupPath = page.action("load path")(self.loadStartupPath)
        ctrl.newSegmentation = page.action("new segmentation")(self.newSegmentation)
        state.change("uploads")(self._onUploads)
        state.maxUploadBytes = page.maxUploadBytes
        page.server.trigger("uploadRefused")(page.action("upload")(self.refuseUpload))
        page.server.trigger("downloadSegmentation")(self._download(self.segmentationBytes))
        page.server.trigger("downloadLabelmap")(self._download(self.labelmapBytes))
        page.server.trigger("downloadVolume")(self._download(self.volumeBytes))
        page.server.trigger("downloadDicomSeg")(self._download(self.dicomSegBytes))
        page.server.trigger("downloadRtStruct")(self._download(self.rtStructBytes))

    def buildUi(self):
        ctrl = self.page.ctrl
        actionButton("Load sample CT", ctrl.loadSample, "load-sample")
        v3.VSelect(label="File kind", items=("fileKinds", KINDS), v_model=("fileKind",), density="compact",
                   id="file-kind", hide_details=True, classes="my-1")
        # The browser checks the size before sending anything: a file above the limit never travels.
        v3.VFileInput(label="Upload files", model_value=("uploads",), multiple=True, density="compact", id="upload",
                      hide_details=True, classes="my-1", update_modelValue=UPLOAD_CHECK)
        with html.Div(classes="d-flex align-center"):
            v3.VTextField(label="Path on the server", v_model=("serverPath",), density="compact", id="server-path",
                          hide_details=True)
            actionButton("Load", ctrl.loadServerPath, "load-path")
        v3.VSelect(label="Volume", items=("volumes",), v_model=("volumeId",), density="compact", id="volume",
                   hide_details=True, classes="my-1")
        v3.VSelect(label="Segmentation", items=("segmentations",), v_model=("segmentationId",), density="compact",
                   id="segmentation", hide_details=True, classes="my-1")
        with html.Div(classes="d-flex align-center"):
            v3.VTextField(label="New segmentation", v_model=("newSegmentationName",), density="compact",
                          id="new-segmentation-name", hide_details=True)
            # the typed name travels with the click: a state update still on its way would name it "Segmentation"
            actionButton("Create", (ctrl.newSegmentation, "[newSegmentationName]"), "new-segmentation")
        # A trigger answers None (and the page shows why) when there is nothing to save; names as at the click.
        actionButton("Save .seg.nrrd", "(n => trigger('downloadSegmentation').then(c => c && utils.download("
                     "n + '.seg.nrrd', c, 'application/octet-stream')))(segmentationName)", "save-segmentation")
        actionButton("Save label map", "(n => trigger('downloadLabelmap').then(c => c && utils.download("
                     "n + '.nii.gz', c, 'application/gzip')))(segmentationName)", "save-labelmap")
        actionButton("Save volume", "(n => trigger('downloadVolume').then(c => c && utils.download("
                     "n + '.nrrd', c, 'application/octet-stream')))(volumeName)", "save-volume")
        # DICOM: the volume must have come from a DICOM series folder (the objects reference it).
        actionButton("Save DICOM SEG", "(n => trigger('downloadDicomSeg').then(c => c && utils.download("
                     "n + '.seg.dcm', c, 'application/dicom')))(segmentationName)", "save-dicom-seg")
        actionButton("Save RTSTRUCT", "(n => trigger('downloadRtStruct').then(c => c && utils.download("
                     "n + '.rtstruct.dcm', c, 'application/dicom')))(segmentationName)", "save-rtstruct")

    # Loading ---------------------------------------------------------------------------------------------------

    def loadSample(self):
        self._load(fetchSampleFile(SAMPLE_FILE), "volume")

    async def loadServerPath(self):
        path = (self.page.state.serverPath or "").strip()
        if not path:
            raise ValueError("Type the path of a file or folder on the server")
        path, kind = os.path.expanduser(path), self.page.state.fileKind
        await readInWorker(path)  # a FIFO or a stalled mount stops this action, not the event loop
        self._load(path, kind)

    def loadStartupPath(self, path, kind="volume"):
        """The operator's --volume, loaded before the page serves anyone."""
        requireReadableFiles(path)
        self._load(path, kind)

    def refuseUpload(self, names, size):
        """What the browser reports instead of sending files above the limit."""
        requireUploadSize(str(names), int(size), self.page.maxUploadBytes)

    def _onUploads(self, uploads=None, **_):
        if not uploads:
            return
        self.page.state.uploads = None
        self.page.action("upload")(self._loadUploads)(uploads)

    def _loadUploads(self, uploads):
        for upload in uploads:
            requireUploadSize(upload.get("name", "file"), int(upload.get("size", 0)), self.page.maxUploadBytes)
        with tempfile.TemporaryDirectory(prefix="aisegmentation-upload-") as folder:
            for upload in uploads:
                content = upload.get("content") or b""
                if isinstance(content, list):  # a large file arrives in chunks
                    content = b"".join(content)
                requireUploadSize(upload.get("name", "file"), len(content), self.page.maxUploadBytes)
                path = os.path.join(folder, os.path.basename(upload.get("name") or "upload"))
                with open(path, "wb") as file:
                    file.write(content)
                self._load(path, self.page.state.fileKind)

    def _load(self, path, kind):
        logic, page = self.page.logic, self.page
        if kind == "volume":
            volume = logic.loadVolume(path)
            page.showVolume(volume)
            page.showSegmentation(logic.createSegmentation(volume, f"{volume.GetName()} segmentation"))
        elif kind == "segmentation":
            page.showSegmentation(logic.loadSegmentation(path))
        elif kind == "labelmap":
            page.showSegmentation(logic.importLabelmap(path, None, page.volume))
        elif kind == "dicomSegmentation":
            page.showSegmentation(logic.loadDicomSegmentation(path, self._dicomSeries()))
        else:
            raise ValueError(f"Unknown file kind '{kind}'")

    def _dicomSeries(self):
        """The loaded volume as the DICOM series a SEG / RTSTRUCT references (the Logic checks its origin)."""
        if self.page.volume is None:
            raise ValueError("Load the DICOM series first: its folder as a Volume, by its path on the server")
        return self.page.volume

    def newSegmentation(self, name=None):
        if self.page.volume is None:
            raise ValueError("Load a volume first")
        name = str(name if name is not None else self.page.state.newSegmentationName or "").strip() or "Segmentation"
        self.page.showSegmentation(self.page.logic.createSegmentation(self.page.volume, name))

    # Saving ----------------------------------------------------------------------------------------------------

    def segmentationBytes(self):
        _, segmentation = self.page.requireVolumeAndSegmentation()
        return self._written(lambda path: self.page.logic.saveSegmentation(segmentation, path), ".seg.nrrd")

    def labelmapBytes(self):
        volume, segmentation = self.page.requireVolumeAndSegmentation()
        return self._written(lambda path: self.page.logic.exportLabelmap(segmentation, volume, path), ".nii.gz")

    def volumeBytes(self):
        if self.page.volume is None:
            raise ValueError("Load a volume first")
        return self._written(lambda path: self.page.logic.saveVolume(self.page.volume, path), ".nrrd")

    def dicomSegBytes(self):
        volume, segmentation = self.page.requireVolumeAndSegmentation()
        return self._written(lambda path: self.page.logic.exportDicomSeg(segmentation, volume, path), ".dcm")

    def rtStructBytes(self):
        volume, segmentation = self.page.requireVolumeAndSegmentation()
        return self._written(lambda path: self.page.logic.exportRtStruct(segmentation, volume, path), ".dcm")

    def _download(self, produce):
        """A download trigger: the file's attachment, or None with the reason on the page (nothing to save)."""
        def download():
            try:
                return produce()
            except ValueError as error:
                self.page.state.error = str(error)
                return None

        return download

    def _written(self, write, suffix):
        with tempfile.TemporaryDirectory(prefix="aisegmentation-download-") as folder:
            path = os.path.join(folder, "output" + suffix)
            write(path)
            with open(path, "rb") as file:
                return self.page.server.protocol.addAttachment(file.read())
