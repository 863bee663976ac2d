"""DICOM SEG outputs on the real example CT series (20 slices 512x512) with TotalSegmentator's label map of it: the
SEG references the source series and its instances, reads back voxel for voxel (every label, checked both through
the source instances and through highdicom's own plane positions), the Logic's label map made from the loaded
folder gives the same SEG, and label maps off the series' grid or a series without UIDs are refused, nothing
written."""

import os
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from AISegmentationLib.Dicom import DicomSeg
from AISegmentationLib.SampleData import fetchDicomSeries, fetchSampleFile
from DevTools.DicomSeries import seriesWithUids

NAMES = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 5: "liver", 6: "stomach"}
ALGORITHM = {"name": "totalsegmentator", "version": {"totalsegmentator": "2.4.0", "torch": "2.13.0"},
             "parameters": {"task": "total", "fast": True}}


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """The example series with its emptied study and series UIDs filled (the SOP UIDs stay empty in the data sets,
    as in the source files) and TotalSegmentator's label map of it."""
    folder = seriesWithUids(fetchDicomSeries(), str(tmp_path_factory.mktemp("dicom") / "example_ct_dicom"))
    return folder, fetchSampleFile("example_seg_dicom.nii.gz")


@pytest.fixture(scope="module")
def written(series, tmp_path_factory):
    folder, labelmap = series
    path = DicomSeg.writeDicomSeg(labelmap, NAMES, folder, str(tmp_path_factory.mktemp("seg") / "case_seg.dcm"),
                                  seriesDescription="TotalSegmentator fast", algorithm=ALGORITHM)
    return path


def _sourceUids(folder):
    uids = {}
    for name in os.listdir(folder):
        dataset = pydicom.dcmread(os.path.join(folder, name), stop_before_pixels=True)
        uids[dataset.file_meta.MediaStorageSOPInstanceUID] = (dataset.SeriesInstanceUID, dataset.StudyInstanceUID)
    return uids


def test_dicom_seg_references_the_source_series(series, written):
    folder, labelmap = series
    seg = pydicom.dcmread(written)
    assert seg.SOPClassUID == pydicom.uid.SegmentationStorage and seg.SegmentationType == "BINARY"
    assert seg.Modality == "SEG" and seg.SeriesDescription == "TotalSegmentator fast"
    sources = _sourceUids(folder)
    (seriesUid, studyUid), = set(sources.values())
    assert seg.StudyInstanceUID == studyUid and seg.SeriesInstanceUID != seriesUid
    referenced, = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == seriesUid
    assert {item.ReferencedSOPInstanceUID for item in referenced.ReferencedInstanceSequence} == set(sources)
    frameSources = {item.SourceImageSequence[0].ReferencedSOPInstanceUID
                    for frame in seg.PerFrameFunctionalGroupsSequence for item in frame.DerivationImageSequence}
    assert frameSources <= set(sources) and len(frameSources) == 20
    present = [int(v) for v in np.unique(sitk.GetArrayFromImage(sitk.ReadImage(labelmap))) if v]
    assert len(seg.SegmentSequence) == len(present) == 31
    first = seg.SegmentSequence[0]
    assert first.SegmentLabel == "spleen" and first.SegmentDescription == "label value 1"
    assert first.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Tissue"
    labelOf = {item.SegmentDescription: item.SegmentLabel for item in seg.SegmentSequence}
    assert labelOf["label value 20"] == "Label 20" and labelOf["label value 5"] == "liver"  # 20: not in the table
    algorithm = first.SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "AISegmentation" and algorithm.AlgorithmSource == "totalsegmentator"
    assert algorithm.AlgorithmVersion == "torch 2.13.0, totalsegmentator 2.4.0"
    assert "task total" in algorithm.AlgorithmParameters


def test_dicom_seg_reads_back_voxel_for_voxel(series, written):
    folder, labelmap = series
    labels, names = DicomSeg.readDicomSeg(written, folder)
    image = sitk.ReadImage(labelmap)
    source = sitk.GetArrayFromImage(image)
    assert labels.shape == source.shape == (20, 512, 512)
    assert sorted(names) == [int(v) for v in np.unique(source) if v] and names[5] == "liver"
    # Independently of DicomSeg's re-indexing: each voxel of the SEG (at highdicom's plane positions) holds the
    # label of the label map's voxel at the same patient position (SimpleITK's NIfTI geometry).
    volume = pydicom.dcmread(written)
    from highdicom.seg import Segmentation

    seg = Segmentation.from_dataset(volume)
    segVolume = seg.get_volume(combine_segments=True, relabel=False)
    numbers = segVolume.array
    k, j, i = np.meshgrid(*[np.arange(n) for n in numbers.shape], indexing="ij")
    positions = segVolume.affine @ np.stack([k.ravel(), j.ravel(), i.ravel(), np.ones(k.size)])
    geometry = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    index = np.rint(np.linalg.solve(geometry, positions[:3] - np.array(image.GetOrigin())[:, None])).astype(int)
    expected = source[index[2], index[1], index[0]].reshape(numbers.shape)
    valueOf = {int(item.SegmentNumber): int(item.SegmentDescription.split()[-1]) for item in seg.SegmentSequence}
    lookup = np.zeros(max(valueOf) + 1, np.int64)
    lookup[list(valueOf)] = list(valueOf.values())
    assert np.array_equal(lookup[numbers], expected)
    onSeriesGrid = _onSeriesGrid(source, image, folder)
    assert np.array_equal(labels, onSeriesGrid)  # every label, voxel for voxel, over the whole series
    assert all(np.count_nonzero(labels == value) == np.count_nonzero(source == value) for value in names)


def _onSeriesGrid(source, image, folder):
    """The label map in the series' KJI order, from the label map's and the slices' geometry (nearest voxel)."""
    datasets = sorted((pydicom.dcmread(os.path.join(folder, n), stop_before_pixels=True) for n in os.listdir(folder)),
                      key=lambda d: float(d.ImagePositionPatient[2]))
    first = datasets[0]
    rows, columns = int(first.Rows), int(first.Columns)
    orientation = np.array(first.ImageOrientationPatient, float)
    row, column = orientation[:3], orientation[3:]
    rowSpacing, columnSpacing = (float(v) for v in first.PixelSpacing)
    geometry = np.array(image.GetDirection()).reshape(3, 3) * np.array(image.GetSpacing())
    out = np.zeros((len(datasets), rows, columns), source.dtype)
    jj, ii = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    for k, dataset in enumerate(datasets):
        points = (np.array(dataset.ImagePositionPatient, float)[:, None] + np.outer(row, ii.ravel() * columnSpacing)
                  + np.outer(column, jj.ravel() * rowSpacing))
        index = np.rint(np.linalg.solve(geometry, points - np.array(image.GetOrigin())[:, None])).astype(int)
        out[k] = source[index[2], index[1], index[0]].reshape(rows, columns)
    return out


def test_the_logics_label_map_of_the_loaded_folder_gives_the_same_seg(logic, series, written, tmp_path):
    """What a cohort case does: load the DICOM folder, import the result, export the label map on the loaded
    volume (NIfTI), write the SEG; the Logic's volume has the series' KJI order."""
    folder, labelmap = series
    volume = logic.loadVolume(folder)
    segmentation = logic.importLabelmap(labelmap, NAMES, volume)
    exported, names = logic.exportLabelmap(segmentation, volume, str(tmp_path / "case_labels.nii.gz"))
    path = DicomSeg.writeDicomSeg(exported, names, folder, str(tmp_path / "logic_seg.dcm"))
    labels, readNames = DicomSeg.readDicomSeg(path, folder)
    expected, _ = DicomSeg.readDicomSeg(written, folder)
    assert np.array_equal(labels, expected) and readNames[5] == "liver" and readNames[20] == "Label 20"
    import slicer

    assert np.array_equal(slicer.util.arrayFromVolume(volume).shape, labels.shape)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(exported)), labels)


def _variant(labelmap, path, change):
    image = sitk.ReadImage(labelmap)
    image = change(image)
    sitk.WriteImage(image, str(path))
    return str(path)


def _shifted(image):
    image.SetOrigin(tuple(np.array(image.GetOrigin()) + [0.5, 0, 0]))
    return image


def _spacing(image):
    image.SetSpacing((0.9765625, 0.9765625, 2.5))
    return image


def _rotated(image):
    angle = np.deg2rad(10)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image.SetDirection(tuple((rotation @ np.array(image.GetDirection()).reshape(3, 3)).ravel()))
    return image


@pytest.mark.parametrize("change, message", [
    (_shifted, "voxels lie 0.500 mm away"),
    (_spacing, "spacing along K is 2.5 mm, the series' 2 mm"),
    (lambda image: image[:, :, :19], "19 voxels along K, the series 20"),
    (_rotated, "axis I is not along a column, row or slice direction"),
])
def test_a_label_map_on_another_grid_is_refused_and_nothing_written(series, tmp_path, change, message):
    folder, labelmap = series
    other = _variant(labelmap, tmp_path / "other.nii.gz", change)
    output = tmp_path / "out" / "seg.dcm"
    with pytest.raises(ValueError, match="is not on the grid of the DICOM series") as error:
        DicomSeg.writeDicomSeg(other, NAMES, folder, str(output))
    assert message in str(error.value) and "nothing was written" in str(error.value)
    assert not output.exists() and not (tmp_path / "out").exists()


def test_a_series_without_uids_or_unevenly_spaced_and_an_empty_label_map_are_refused(series, tmp_path):
    folder, labelmap = series
    with pytest.raises(ValueError, match="no StudyInstanceUID .* must reference the source study and series"):
        DicomSeg.writeDicomSeg(labelmap, NAMES, fetchDicomSeries(), str(tmp_path / "seg.dcm"))
    empty = _variant(labelmap, tmp_path / "empty.nii.gz", lambda image: image * 0)
    with pytest.raises(ValueError, match="holds no label"):
        DicomSeg.writeDicomSeg(empty, NAMES, folder, str(tmp_path / "seg.dcm"))
    gap = tmp_path / "gap"
    shutil.copytree(folder, gap, ignore=lambda _, names: sorted(names)[10:11])  # one slice missing
    with pytest.raises(ValueError, match="is not evenly spaced .* no DICOM SEG can be written"):
        DicomSeg.writeDicomSeg(labelmap, NAMES, str(gap), str(tmp_path / "seg.dcm"))
    assert sorted(os.listdir(tmp_path)) == ["empty.nii.gz", "gap"]
    with pytest.raises(ValueError, match="not a readable DICOM Segmentation"):
        DicomSeg.readDicomSeg(empty, folder)
