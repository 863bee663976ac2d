"""The MONAI Auto3DSeg model catalog (models.json) and the backend's checks before a run: no environment needed."""

import copy
import json
import zipfile

import pytest

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Backends.MonaiAuto3DSeg import MonaiModels
from AISegmentationLib.Backends.Backend import BackendContext

BACKEND = "monaiauto3dseg"


def _backend():
    return Registry.getBackend(BACKEND)


def _catalog():
    with open(_backend().folder + "/models.json", encoding="utf-8") as file:
        return json.load(file)


def test_catalog_lists_the_models_with_unique_ids_inputs_and_checksum_fields():
    models = MonaiModels.validateCatalog(_catalog())
    ids = [entry["id"] for entry in models]
    assert len(models) >= 30 and len(set(ids)) == len(ids)
    inputs = {entry["id"]: entry["inputs"] for entry in models}
    assert inputs["prostate"] == ["T2", "ADC"]
    assert all(inputs[f"brats-{kind}"] == ["T2F", "T1C", "T1N", "T2W"] for kind in ("gli", "men", "met", "ped", "ssa"))
    assert sum(len(names) == 1 for names in inputs.values()) == len(models) - 6
    quick = [entry for entry in models if entry["quick"]]
    assert len(quick) >= 10 and all(entry["resolution"] for entry in quick)
    for entry in models:
        for version in entry["versions"]:
            assert "sha256" in version and "size" in version
            assert version["url"].endswith(f"-v{version['version']}.zip")
    assert set(_backend().options[0].choices) == set(ids) and _backend().options[0].default in ids


@pytest.mark.parametrize("change, message", [
    (lambda data: data["models"].append(copy.deepcopy(data["models"][0])), "lists model 'abdominal-organs-3mm' twice"),
    (lambda data: data["models"][0].update(inputs=[]), "inputs must name at least one"),
    (lambda data: data["models"][0]["versions"][0].update(sha256="ABC"), "sha256 must be 64 lower-case hex"),
    (lambda data: data["models"][0]["versions"][0].pop("size"), "size must be a positive byte count"),
    (lambda data: data["models"][0]["versions"][0].update(url="ftp://x/y.zip"), "no http"),
    (lambda data: data["models"][0].update(modality="XR"), "modality 'XR'"),
    (lambda data: data["models"][0].update(id="Bad Id"), "id must be lower-case"),
])
def test_a_bad_catalog_entry_is_named(change, message):
    data = _catalog()
    change(data)
    with pytest.raises(ValueError, match=message):
        MonaiModels.validateCatalog(data)


def test_missing_model_needs_consent_or_an_import_and_offline_blocks_downloads(tmp_path, monkeypatch):
    backend = _backend()
    context = BackendContext(settings={"home": str(tmp_path)})
    with pytest.raises(ValueError, match="'prostate' .* is not installed and allowDownload is off"):
        backend.prepare(context, model="prostate")
    prepared = backend.prepare(context, model="prostate", allowDownload=True)
    assert prepared.channels == ["T2", "ADC"] and prepared.childOptions["download"]["url"].endswith(
        "prostate-v1.0.1.zip")
    assert prepared.childOptions["download"]["target"] == str(tmp_path / "prostate" / "1.0.1")
    monkeypatch.setenv("AISEGMENTATION_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"downloads are off \(\$AISEGMENTATION_OFFLINE\)"):
        backend.prepare(context, model="prostate", allowDownload=True)
    with pytest.raises(ValueError, match="inputs names the volumes of a model file"):
        backend.prepare(context, model="prostate", inputs=["a"])


def test_model_files_and_imports_are_checked(tmp_path):
    backend = _backend()
    context = BackendContext(settings={"home": str(tmp_path / "home")})
    good = tmp_path / "model.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("sub/model.pt", b"weights")
        archive.writestr("sub/labels.csv", "LabelValue,Name\n1,liver\n")
    prepared = backend.prepare(context, modelFile=str(good), inputs=["T1", "T2"])
    assert prepared.childOptions["modelZip"] == str(good) and prepared.channels == ["T1", "T2"]
    split = tmp_path / "split.zip"
    with zipfile.ZipFile(split, "w") as archive:
        archive.writestr("a/model.pt", b"weights")
        archive.writestr("b/labels.csv", "LabelValue,Name\n")
    with pytest.raises(ValueError, match="needs model.pt and labels.csv in one folder"):
        backend.prepare(context, modelFile=str(split))
    with pytest.raises(ValueError, match="holds no MONAI Auto3DSeg model"):
        backend.prepare(context, modelFile=str(tmp_path))
    installed = backend.importModel(context, f"aorta={good}")
    assert installed == [str(tmp_path / "home" / "aorta" / "1.1.0")]
    prepared = backend.prepare(context, model="aorta")
    assert prepared.childOptions["modelFolder"] == str(tmp_path / "home" / "aorta" / "1.1.0" / "sub")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("model.pt", b"x")
        archive.writestr("labels.csv", "x")
        archive.writestr("../../escaped.txt", "owned")
    with pytest.raises(ValueError, match="leaves the destination folder"):
        backend.importModel(context, f"aorta={evil}")
    assert not (tmp_path / "escaped.txt").exists()
    with pytest.raises(ValueError, match="MODEL_ID=ZIP"):
        backend.importModel(context, str(good))
