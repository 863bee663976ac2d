"""A real PACS: Orthanc with its DICOMweb plugin (Debian's packages) on 127.0.0.1, its own temporary storage and a
password, started once for this module. Series go in by STOW-RS (a tiny phantom CT series made with real UIDs by
DevTools.DicomSeries.syntheticSeries, and the real example CT series with its UIDs filled in, JPEG 2000 as
published); the example comes back by WADO-RS voxel for voxel; `batch --dicomweb` retrieves the phantom study,
segments it with the tiny nnU-Net model on Dask, stores the case's DICOM SEG and RTSTRUCT back, and the SEG read
back from Orthanc references its series and equals the case's label map voxel for voxel; a series the PACS does not
have fails its case and the others go on. Prints the time to retrieve, segment and store one series."""

import json
import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from AISegmentationLib.Dicom.DicomSeg import SourceSeries, readDicomSeg, readLabelsOnSeriesGrid
from AISegmentationLib.Dicom.DicomWeb import DicomWebServer
from AISegmentationLib.SampleData import fetchDicomSeries
from DevTools import build_tiny_models
from DevTools.DicomSeries import seriesWithUids, syntheticSeries
from DevTools.Orthanc import OrthancServer, orthancAvailable
from DevTools.SyntheticCohort import PHANTOM_NAMES
from DevTools.TinyModels import nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

pytestmark = [pytest.mark.slow, pytest.mark.skipif(orthancAvailable() is not None, reason=str(orthancAvailable()))]


def _files(folder):
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))]


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """Orthanc holding a phantom series and the example CT; (orthanc, server, {name: folder})."""
    root = tmp_path_factory.mktemp("pacs")
    (image,), _truth = build_tiny_models.phantomCase(7001)
    folders = {"phantom": syntheticSeries(str(root / "phantom"), np.round(image), seed="phantom7001",
                                          origin=(-20.0, -20.0, 0.0), spacing=(1.0, 1.0, 1.0))}
    folders["example"] = seriesWithUids(fetchDicomSeries(), str(root / "example_ct_dicom"), sopUids=True)
    with OrthancServer(root / "orthanc") as orthanc:
        server = DicomWebServer(orthanc.dicomWebUrl, credentialsFile=orthanc.credentialsFile)
        for folder in folders.values():
            server.store(_files(folder))
        yield orthanc, server, folders


def _uids(folder):
    dataset = pydicom.dcmread(_files(folder)[0], stop_before_pixels=True)
    return str(dataset.StudyInstanceUID), str(dataset.SeriesInstanceUID)


def test_example_ct_comes_back_voxel_for_voxel(logic, pacs, tmp_path):
    orthanc, server, folders = pacs
    study, series = _uids(folders["example"])
    retrieved = server.retrieveSeries(study, series, tmp_path / "retrieved")
    assert len(os.listdir(retrieved)) == len(os.listdir(folders["example"])) == 20
    original = logic.loadVolume(folders["example"])
    copy = logic.loadVolume(retrieved)
    import slicer

    assert np.array_equal(slicer.util.arrayFromVolume(original), slicer.util.arrayFromVolume(copy))
    unauthorized = DicomWebServer(orthanc.dicomWebUrl)
    with pytest.raises(ValueError, match="HTTP 401"):
        unauthorized.retrieveSeries(study, series, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_batch_from_and_back_to_orthanc(pacs, tinyModels, tmp_path):
    from CommandLineProcess import runCli as run

    orthanc, server, folders = pacs
    study, phantomSeries = _uids(folders["phantom"])
    missing = f"{study}/1.2.826.0.1.3680043.8.498.999999"
    output = tmp_path / "out"
    result = run("batch", "--output", output, "--dicomweb", orthanc.dicomWebUrl, "--dicomweb-credentials",
                 orthanc.credentialsFile, "--study", study, "--dicomweb-series", missing, "--store-rtstruct",
                 "--steps", "segment,volumes", "--workers", "1", "nnunet", "--model",
                 tinyModels["phantomModel"], "--device", "cpu", "--no-tta")
    assert orthanc.password not in result.stdout + result.stderr
    assert result.returncode == 2, result.stdout + result.stderr  # the missing series failed; the others went on
    assert "PACS FAILED 1.2.826.0.1.3680043.8.498.999999: retrieving:" in result.stdout
    assert "HTTP 404" in result.stdout
    report = json.loads((output / "pacs.json").read_text())
    done = [t for t in report["transfers"] if not t["error"]]
    assert [t["series"] for t in done] == [phantomSeries]
    assert not (output / ".pacs-retrieved").exists()
    for transfer in done:
        print(f"\nseries {transfer['series'][-12:]}: retrieve {transfer['retrieveSeconds']:.2f} s, case (load, "
              f"segment, outputs) {transfer['caseSeconds']:.2f} s, store SEG + RTSTRUCT "
              f"{transfer['storeSeconds']:.2f} s")
        _checkStoredSeg(server, study, folders["phantom"], output / "cases" / transfer["case"], tmp_path)


def _checkStoredSeg(server, study, sourceFolder, caseFolder, tmp_path):
    """The SEG on Orthanc references the case's series and equals its label map voxel for voxel."""
    sourceSeries = _uids(sourceFolder)[1]
    stored = {}
    for uid in server.seriesOfStudy(study, ("SEG", "RTSTRUCT")):
        folder = server.retrieveSeries(study, uid, tmp_path / uid)
        dataset = pydicom.dcmread(_files(folder)[0])
        referenced = dataset.ReferencedSeriesSequence[0].SeriesInstanceUID if dataset.Modality == "SEG" else \
            dataset.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[
                0].SeriesInstanceUID
        if referenced == sourceSeries:
            stored[dataset.Modality] = _files(folder)[0]
    assert set(stored) == {"SEG", "RTSTRUCT"}
    labels, names = readDicomSeg(stored["SEG"], sourceFolder)
    caseId = caseFolder.name
    expected = readLabelsOnSeriesGrid(caseFolder / f"{caseId}_labels.nii.gz", SourceSeries(sourceFolder))
    assert np.array_equal(labels, expected) and set(names.values()) <= set(PHANTOM_NAMES.values())
    assert np.count_nonzero(expected) > 0
    assert sitk.ReadImage(str(caseFolder / f"{caseId}_labels.nii.gz")).GetSize() == (40, 40, 40)
