"""The MOOSE backend's declarations, as the panel, the CLI and the Logic see them: no environment, no model needed
(the runs are in test_ai_moose.py)."""

import json
import os

import numpy as np
import pytest
from DevTools.SyntheticImages import makeVolume

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Backends.Backend import BackendContext
from AISegmentationLib.Backends.Moose.MooseBackend import DEFAULT_MODEL, KNOWN_MODELS, modelModality
from AISegmentationLib.Backends.Options import parseListText, validateOptions
from AISegmentationLib.CommandLine import Main as AISegmentationCLI


def test_the_panel_and_the_cli_get_moose_options_from_its_declarations(logic):
    assert "moose" in logic.backendNames() and logic.backend("moose").title == "MOOSE"
    options = {option.name: option for option in logic.backendOptions("moose")}
    assert list(options) == ["model", "device", "allowDownload", "checkModality"]
    assert options["model"].choices == KNOWN_MODELS and options["model"].default == DEFAULT_MODEL
    assert "clin_ct_organs" in KNOWN_MODELS and "clin_ct_fast_organs" in KNOWN_MODELS
    assert parseListText(options["model"], " clin_ct_lungs ") == ["clin_ct_lungs"]  # a list: several allowed
    assert options["device"].choices == ("auto", "cpu", "cuda", *(f"cuda:{i}" for i in range(8)), "mps")
    assert [options[name].cliFlag for name in ("allowDownload", "checkModality")] == ["download", "check-modality"]
    with pytest.raises(ValueError, match="Option 'model' must be one of clin_ct_body"):
        validateOptions(logic.backendOptions("moose"), {"model": "clin_ct_nothing"}, "MOOSE")
    with pytest.raises(SystemExit):
        AISegmentationCLI.main(["segment", "moose", "--help"])


def test_prepare_names_the_input_by_modality_and_forces_cpu_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv("AISEGMENTATION_MOOSE_HOME_DIR", str(tmp_path / "home"))
    backend = Registry.getBackend("moose")
    context = BackendContext({}, dict)  # before the environment exists: the static model list stands in
    prepared = backend.prepare(context, **validateOptions(backend.options, {"device": "cpu"}))
    assert prepared.channels == ["CT"] and prepared.environment == {"CUDA_VISIBLE_DEVICES": ""}
    assert prepared.childOptions["modelsDir"] == os.path.join(str(tmp_path / "home"), "models",
                                                              "nnunet_trained_models")
    assert prepared.parameters == {"model": DEFAULT_MODEL, "device": "cpu", "allowDownload": True,
                                   "checkModality": True}
    variables = backend.childVariables(prepared, str(tmp_path))
    assert variables["nnUNet_results"] == str(tmp_path) and variables["CUDA_VISIBLE_DEVICES"] == ""
    assert backend.prepare(context, model="clin_ct_lungs", device="auto").environment == {}
    pet = backend.prepare(BackendContext({"home": str(tmp_path / "mine")}, dict), model="clin_pt_fdg_brain_v1")
    assert pet.channels == ["PT_FDG"] and pet.childOptions["modelsDir"].startswith(str(tmp_path / "mine"))
    assert [modelModality(name) for name in ("clin_ct_body", "preclin_mr_all", "clin_mr_FVM")] == ["CT", "MR", "MR"]
    probed = BackendContext({}, lambda: {"models": [{"name": "clin_ct_body", "modality": "CT"}]})
    with pytest.raises(ValueError, match="Unknown MOOSE model 'clin_ct_lungs'; models: clin_ct_body"):
        backend.prepare(probed, model="clin_ct_lungs")


def test_wrong_input_count_and_memory_estimate_need_no_environment(logic):
    volume = makeVolume(logic, np.full((20, 30, 40), -1000.0, np.float32), spacing=(0.8, 0.8, 2.0))
    nodes = logic.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match=r"takes 1 input volume\(s\) \(CT\), got 2"):
        logic.startBackend("moose", [volume, volume], device="cpu")
    assert logic.scene.GetNumberOfNodes() == nodes
    estimate = logic.estimateBackendMemory("moose", volume)
    assert 0 < estimate.peakBytes < 2 * 1024**3


def test_requirements_pin_moosez_on_the_nnunet_environment():
    backend = Registry.getBackend("moose")
    with open(backend.requirementsPath, encoding="utf-8") as file:
        lines = [line.strip() for line in file if line.strip() and not line.startswith("#")]
    assert lines == ["-r ../NnUNet/nnunet-requirements.txt", "moosez==3.2.2"]  # torch==2.13.0 comes from there


def _installLabels(home, folderName, labels):
    """A model folder as MOOSE leaves it, reduced to what the parent reads: its dataset.json's labels."""
    folder = os.path.join(home, "models", "nnunet_trained_models", folderName, "nnUNetTrainer__nnUNetPlans__3d_"
                          "fullres")
    os.makedirs(folder)
    with open(os.path.join(folder, "dataset.json"), "w", encoding="utf-8") as file:
        json.dump({"labels": {"background": 0, **{name: index + 1 for index, name in enumerate(labels)}}}, file)


PROBED = [{"name": "clin_ct_organs", "modality": "CT", "folderName": "Dataset123_Organs"},
          {"name": "clin_ct_ribs", "modality": "CT", "folderName": "Dataset444_Ribs"},
          {"name": "clin_ct_fast_organs", "modality": "CT", "folderName": "Dataset145_Fast_organs"},
          {"name": "clin_pt_fdg_brain_v1", "modality": "PT_FDG", "folderName": "Dataset100_Brain"}]


def test_several_models_are_one_run_and_the_model_box_takes_several(logic, tmp_path):
    backend = Registry.getBackend("moose")
    option = {option.name: option for option in logic.backendOptions("moose")}["model"]
    assert option.multiple and option.choices == KNOWN_MODELS  # the panel's box: several choices of the list
    assert parseListText(option, "clin_ct_organs, clin_ct_ribs") == ["clin_ct_organs", "clin_ct_ribs"]
    _installLabels(str(tmp_path), "Dataset123_Organs", ["liver", "spleen"])
    _installLabels(str(tmp_path), "Dataset444_Ribs", ["rib_left_1", "rib_right_1"])
    context = BackendContext({"home": str(tmp_path)}, lambda: {"models": PROBED})
    prepared = backend.prepare(context, **validateOptions(backend.options, {"model": ["clin_ct_organs",
                                                                                     "clin_ct_ribs"]}))
    assert prepared.childOptions["models"] == ["clin_ct_organs", "clin_ct_ribs"] and prepared.channels == ["CT"]
    assert prepared.parameters["model"] == ["clin_ct_organs", "clin_ct_ribs"]
    assert prepared.description == "MOOSE models 'clin_ct_organs' + 'clin_ct_ribs'"
    single = backend.prepare(context, **validateOptions(backend.options, {"model": "clin_ct_ribs"}))
    assert single.parameters["model"] == "clin_ct_ribs" and single.description == "MOOSE model 'clin_ct_ribs'"
    parser = AISegmentationCLI.buildParser()
    args = parser.parse_args(["segment", "moose", "ct.nii.gz", "--model", "clin_ct_organs", "clin_ct_ribs",
                              "--output", "ct.seg.nrrd"])
    assert args.option_model == ["clin_ct_organs", "clin_ct_ribs"]


@pytest.mark.parametrize("models, message", [
    (["clin_ct_organs", "clin_ct_fast_organs"], "MOOSE models 'clin_ct_organs' and 'clin_ct_fast_organs' both "
                                                "name a structure 'liver'"),
    (["clin_ct_organs", "clin_ct_organs"], "MOOSE model\\(s\\) given twice"),
    (["clin_ct_organs", "clin_pt_fdg_brain_v1"], "clin_ct_organs \\(CT\\), clin_pt_fdg_brain_v1 \\(PT_FDG\\) take "
                                                 "different inputs"),
    ([], "No MOOSE model given"),
])
def test_incompatible_model_combinations_are_refused_before_any_process(logic, tmp_path, monkeypatch, models,
                                                                        message):
    import tempfile

    from AISegmentationLib.Backends import AILogic

    home = tmp_path / "home"
    _installLabels(str(home), "Dataset123_Organs", ["liver", "spleen"])
    _installLabels(str(home), "Dataset145_Fast_organs", ["kidney", "liver"])
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(jobs))
    started = []
    monkeypatch.setattr(AILogic, "backendPython", lambda *arguments: started.append(arguments))
    monkeypatch.setattr(logic.aiEnvironments, "probe", lambda name: {"models": PROBED})
    logic.backendSettings("moose")["home"] = str(home)
    volume = makeVolume(logic, np.full((8, 8, 8), -1000.0, np.float32))
    nodes = logic.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match=message):
        logic.startBackend("moose", volume, model=models, device="cpu")
    assert not started and not os.listdir(jobs) and logic.scene.GetNumberOfNodes() == nodes
