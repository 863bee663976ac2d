"""Cohort inputs and cluster settings, checked before anything runs: the CSV manifest and the folder convention,
steps, scheduler addresses (TLS beyond loopback), TLS files, GPU resources and the local cluster's size."""

import json
import os

import pytest

from AISegmentationLib.Cluster import ClusterConnection
from AISegmentationLib import Manifest
from AISegmentationLib.Cohort import CaseTask
from AISegmentationLib.Cohort.CohortLogic import CohortLogic


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return str(path)


def test_csv_manifest_resolves_paths_channels_options_and_dicom_folders(tmp_path):
    os.makedirs(tmp_path / "dicom" / "c3")
    manifest = _write(tmp_path / "cohort.csv",
                      "case,image,reference,options,prediction\n"
                      'c1,images/c1_t1.nii.gz; images/c1_t2.nii.gz,labels/c1.nii.gz,"{""tta"": false}",\n'
                      f"c2,{tmp_path / 'abs.nrrd'},,,pred/c2.seg.nrrd\n"
                      "c3,dicom/c3,,,\n\n")
    cases = Manifest.readManifest(manifest)
    assert [case["case"] for case in cases] == ["c1", "c2", "c3"]
    assert cases[0]["images"] == [str(tmp_path / "images" / "c1_t1.nii.gz"), str(tmp_path / "images" / "c1_t2.nii.gz")]
    assert cases[0]["reference"] == str(tmp_path / "labels" / "c1.nii.gz")
    assert cases[0]["options"] == {"tta": False} and not cases[0]["dicom"]
    assert cases[1]["images"] == [str(tmp_path / "abs.nrrd")] and cases[1]["reference"] is None
    assert cases[1]["prediction"] == str(tmp_path / "pred" / "c2.seg.nrrd")
    assert cases[2]["dicom"] is True
    json.dumps(cases)  # plain data: it travels to the workers


@pytest.mark.parametrize("text, message", [
    ("id,image\nc1,a.nii.gz\n", "no 'case' column"),
    ("case,reference\nc1,a.nii.gz\n", "no 'image' column"),
    ("case,image,extra\nc1,a.nii.gz,x\n", "unknown column"),
    ("case,image\nc1,a.nii.gz\nc1,b.nii.gz\n", "'c1' appears twice"),
    ("case,image\n../up,a.nii.gz\n", "not usable as a folder name"),
    ("case,image\nc1,\n", "has no image"),
    ("case,image,options\nc1,a.nii.gz,{tta: false}\n", "not valid JSON"),
    ("case,image,options\nc1,a.nii.gz,[1]\n", "must be a JSON object"),
    ("case,image\n", "holds no cases"),
])
def test_malformed_manifest_is_a_clear_error_before_anything_runs(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        Manifest.readManifest(_write(tmp_path / "cohort.csv", text))


def test_missing_manifest_and_missing_image_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        Manifest.readManifest(tmp_path / "nothing.csv")
    cases = Manifest.readManifest(_write(tmp_path / "cohort.csv", "case,image\nc1,missing.nii.gz\n"))
    assert cases[0]["images"] == [str(tmp_path / "missing.nii.gz")]  # a failed case at run time, not here


def test_folder_convention_nnunet_style_and_dicom_subfolders(tmp_path):
    for name in ("a_0000.nii.gz", "a_0001.nii.gz", "b_0000.nrrd", "notes.txt"):
        _write(tmp_path / "imagesTs" / name, "")
    _write(tmp_path / "labelsTs" / "a.nii.gz", "")
    _write(tmp_path / "labelsTs" / "series1.seg.nrrd", "")
    _write(tmp_path / "series1" / "IM0001.dcm", "")
    cases = {case["case"]: case for case in Manifest.readManifest(tmp_path)}
    assert sorted(cases) == ["a", "b", "series1"]
    assert [os.path.basename(p) for p in cases["a"]["images"]] == ["a_0000.nii.gz", "a_0001.nii.gz"]
    assert cases["a"]["reference"].endswith(os.path.join("labelsTs", "a.nii.gz"))
    assert cases["b"]["reference"] is None
    assert cases["series1"]["dicom"] and cases["series1"]["reference"].endswith("series1.seg.nrrd")
    _write(tmp_path / "imagesTs" / "c_0001.nii.gz", "")
    with pytest.raises(ValueError, match="channels \\[1\\]"):
        Manifest.readManifest(tmp_path)


def test_steps():
    assert CaseTask.requireSteps("volumes,segment") == ("segment", "volumes")
    assert CaseTask.requireSteps(["compare"]) == ("compare",)
    for bad in ("segment,draw", "", []):
        with pytest.raises(ValueError, match="choose among segment, compare, volumes"):
            CaseTask.requireSteps(bad)


def test_scheduler_addresses_tls_beyond_loopback():
    assert ClusterConnection.isLoopbackAddress("tcp://127.0.0.1:8786")
    assert ClusterConnection.isLoopbackAddress("localhost:8786")
    assert ClusterConnection.isLoopbackAddress("tls://[::1]:8786")
    assert not ClusterConnection.isLoopbackAddress("tcp://10.1.2.3:8786")
    assert ClusterConnection.requireSecureAddress(" tcp://127.0.0.1:8786 ") == "tcp://127.0.0.1:8786"
    with pytest.raises(ValueError, match="over tcp: a scheduler beyond this machine must be reached over TLS"):
        ClusterConnection.requireSecureAddress("tcp://10.1.2.3:8786")
    with pytest.raises(ValueError, match="over tcp"):
        ClusterConnection.requireSecureAddress("gpu-server:8786")  # no scheme is plain tcp
    with pytest.raises(ValueError, match="needs TLS settings"):
        ClusterConnection.requireSecureAddress("tls://10.1.2.3:8786")
    with pytest.raises(ValueError, match="No Dask scheduler address"):
        ClusterConnection.requireSecureAddress("  ")
    with pytest.raises(ValueError, match="unknown protocol 'http'"):
        ClusterConnection.requireSecureAddress("http://10.1.2.3:8786")


def test_tls_files_must_exist(tmp_path):
    ca = _write(tmp_path / "ca.pem", "x")
    with pytest.raises(ValueError, match=r"missing: certificate '.*cert.pem', private key \(not given\)"):
        ClusterConnection.makeSecurity(ca, tmp_path / "cert.pem", None)


def test_gpu_resources_and_local_cluster_size():
    assert ClusterConnection.resourcesFor("cuda") == {"GPU": 1} == ClusterConnection.resourcesFor("cuda:1")
    assert ClusterConnection.resourcesFor("cpu") == {} == ClusterConnection.resourcesFor(None)
    total = ClusterConnection._totalMemory()
    workers, limit = ClusterConnection.localClusterSize()
    assert 1 <= workers <= (os.cpu_count() or 1) and limit == total // workers
    assert ClusterConnection.localClusterSize(memoryPerWorkerBytes=total // 2 + 1)[0] == 1  # one case fits
    assert ClusterConnection.localClusterSize(workers=3)[0] == 3
    with pytest.raises(ValueError, match="whole number >= 1"):
        ClusterConnection.localClusterSize(workers=0)


def test_a_cohort_goes_beyond_this_computer_only_after_consent(logic, tmp_path):
    from AISegmentationLib.Consent import ConsentStore

    image = _write(tmp_path / "images" / "a.nii.gz", "not read: refused before")
    files = [_write(tmp_path / "tls" / name, "x") for name in ("ca.pem", "cert.pem", "key.pem")]
    security = ClusterConnection.makeSecurity(*files)
    logic.setClusterConsentStore(ConsentStore(None))
    asked = []
    logic.clusterConsentCallback = lambda address: asked.append(address) or False  # the user says no
    cases = [Manifest.case("a", [image])]
    with pytest.raises(ValueError, match=r"sent to the Dask cluster at tls://192\.0\.2\.10:8786.*not agreed"):
        CohortLogic(logic).runCohort(cases, str(tmp_path / "out"), steps=("volumes",), scheduler="tls://192.0.2.10:8786",
                        security=security)
    assert asked == ["tls://192.0.2.10:8786"] and not os.path.exists(tmp_path / "out")
    with pytest.raises(ValueError, match="over tcp: a scheduler beyond this machine must be reached over TLS"):
        CohortLogic(logic).runCohort(cases, str(tmp_path / "out"), steps=("volumes",), scheduler="tcp://192.0.2.10:8786")
    assert asked == ["tls://192.0.2.10:8786"]  # refused before anyone is asked
