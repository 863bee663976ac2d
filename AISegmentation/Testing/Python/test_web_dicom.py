"""The web page's DICOM: a DICOM series folder loaded by its path on the server, DICOM SEG and RTSTRUCT files uploaded
as segmentations on it, and the segmentation downloaded as DICOM SEG and RTSTRUCT. A real server (.venv-web) on
loopback and the raw websocket client (WebsocketProbe.py) that drives the page's controls as the browser does; the
downloads are read back by the Logic here (SEG voxel for voxel, RTSTRUCT Dice >= 0.98). Bad uploads (not DICOM,
another series, frames decoding past the image budget, no series loaded) and downloads without a DICOM series are
messages that change nothing."""

import numpy as np
import pydicom
import pytest
from DevTools.DicomSeries import syntheticSeries
from DevTools.SyntheticImages import dice
from test_dicom_export import _masks, _tinyImage, _tinySegmentation, tinySeries  # noqa: F401 - the fixture
from test_web_limits import pageServer, probe

pytestmark = pytest.mark.slow


@pytest.fixture
def dicomFiles(logic, tinySeries, tmp_path):  # noqa: F811 - the fixture imported above
    """(SEG path, RTSTRUCT path, the segments' masks) of the tiny series' ring and ball."""
    volume, segmentation = _tinySegmentation(logic, tinySeries)
    return (logic.exportDicomSeg(segmentation, tinySeries, tmp_path / "tiny-seg.dcm"),
            logic.exportRtStruct(segmentation, tinySeries, tmp_path / "tiny-rt.dcm"),
            _masks(logic, segmentation, volume))


def readBack(logic, path, series):
    volume = logic.loadVolume(series)
    return _masks(logic, logic.loadSegmentation(path, sourceSeries=series), volume)


def test_series_by_path_seg_and_rtstruct_uploads_and_downloads_round_trip(logic, tinySeries, dicomFiles,  # noqa: F811
                                                                          tmp_path):
    segPath, rtPath, original = dicomFiles
    with pageServer(tmp_path) as (url, _, _):
        early = probe("send", url, "dicomSegmentation", segPath)
        assert early["error"].startswith("Load the DICOM series first") and early["segmentations"] == [], early
        series = probe("path", url, "volume", tinySeries)
        assert series["error"] == "" and series["volumes"] == ["tiny"], series
        for path, name in ((segPath, "tiny-seg"), (rtPath, "tiny-rt")):
            uploaded = probe("send", url, "dicomSegmentation", path)
            assert uploaded["error"] == "" and uploaded["segmentations"][-1] == name, uploaded
        # the RTSTRUCT upload is the page's segmentation now: its downloads hold its contours
        downloads = {kind: probe("save", url, trigger, tmp_path / f"page-{kind}.dcm")
                     for kind, trigger in (("seg", "downloadDicomSeg"), ("rt", "downloadRtStruct"))}
    for kind, outcome in downloads.items():
        assert outcome["bytes"] and outcome["error"] == "" and not outcome["replyError"], (kind, outcome)
    seg, rt = (readBack(logic, tmp_path / f"page-{kind}.dcm", tinySeries) for kind in ("seg", "rt"))
    assert list(seg) == list(rt) == ["ring", "ball"]
    figures = {name: dice(rt[name], mask) for name, mask in original.items()}
    print("Page RTSTRUCT upload -> download Dice per structure:", figures)
    assert min(figures.values()) >= 0.98
    for name in original:
        assert np.array_equal(seg[name], rt[name]), name  # the SEG download is the uploaded RTSTRUCT exactly


def test_bad_dicom_uploads_and_downloads_are_messages_that_change_nothing(logic, tinySeries, dicomFiles,  # noqa: F811
                                                                          tmp_path):
    segPath, _, _ = dicomFiles
    notDicom = tmp_path / "notes.dcm"
    notDicom.write_bytes(b"not a DICOM file " * 64)
    other = syntheticSeries(str(tmp_path / "other"), _tinyImage(), seed="another series")
    otherVolume, otherSegmentation = _tinySegmentation(logic, other)
    otherSeg = logic.exportDicomSeg(otherSegmentation, other, tmp_path / "other-seg.dcm")
    bomb = pydicom.dcmread(segPath)
    bomb.NumberOfFrames = 10**9  # compressed frames decoding to terabytes: the header alone is refused
    bomb.save_as(tmp_path / "bomb.dcm")
    plainVolume = str(tmp_path / "plain.nrrd")
    logic.saveVolume(otherVolume, plainVolume)
    with pageServer(tmp_path) as (url, _, _):
        before = probe("path", url, "volume", tinySeries)["segmentations"]
        empty = probe("save", url, "downloadDicomSeg", tmp_path / "empty.dcm")
        assert empty["bytes"] is None and "no segment to export" in empty["error"], empty
        refused = probe("send", url, "dicomSegmentation", notDicom)
        assert "neither a DICOM SEG nor an RTSTRUCT" in refused["error"], refused
        assert refused["segmentations"] == before, refused
        foreign = probe("send", url, "dicomSegmentation", otherSeg)
        assert foreign["error"] and foreign["segmentations"] == before, foreign
        print("A SEG of another series:", foreign["error"])
        bombed = probe("send", url, "dicomSegmentation", tmp_path / "bomb.dcm")
        assert "more than the image budget" in bombed["error"] and bombed["segmentations"] == before, bombed
        assert probe("send", url, "dicomSegmentation", segPath)["error"] == ""
        plain = probe("path", url, "volume", plainVolume)
        assert plain["error"] == "", plain
        notSeries = probe("save", url, "downloadRtStruct", tmp_path / "plain-rt.dcm")
        assert notSeries["bytes"] is None and "not loaded from a DICOM series" in notSeries["error"], notSeries
    assert not (tmp_path / "empty.dcm").exists() and not (tmp_path / "plain-rt.dcm").exists()
