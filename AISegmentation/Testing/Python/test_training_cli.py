"""``aisegmentation train all``: every step in one command, the folds on a Dask cluster given by --scheduler as for
``batch`` — TLS beyond this machine and consent, checked before any step runs, nothing written when refused.
(The full `train all` run on a trained project is in test_training.py, on the module's tiny model.)"""

import os

import numpy as np
import pytest
from DevTools import build_tiny_models

from AISegmentationLib.CommandLine import Main as AISegmentationCLI
from AISegmentationLib.Consent import ConsentStore


def _manifest(folder, count=4):
    import SimpleITK as sitk

    rows = ["case,image,reference"]
    for index in range(count):
        channels, truth = build_tiny_models.phantomCase(index)
        for name, array in ((f"img{index}.nii.gz", channels[0]), (f"lab{index}.nii.gz", truth.astype(np.uint8))):
            sitk.WriteImage(sitk.GetImageFromArray(array), str(folder / name))
        rows.append(f"c{index},img{index}.nii.gz,lab{index}.nii.gz")
    (folder / "cohort.csv").write_text("\n".join(rows) + "\n")
    return str(folder / "cohort.csv")


@pytest.mark.parametrize("address, message", [("tcp://192.0.2.10:8786", "over tcp: a scheduler beyond this machine"),
                                               ("tls://192.0.2.10:8786", "needs TLS settings")])
def test_train_all_refuses_an_unsafe_scheduler_before_any_step(tmp_path, capsys, address, message):
    manifest = _manifest(tmp_path)
    project = tmp_path / "project"
    code = AISegmentationCLI.main(["train", "all", "--project", str(project), "--manifest", manifest, "--folds", "2",
                                   "--preset", "tiny", "--epochs", "1", "--scheduler", address])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not project.exists()  # refused before the dataset step wrote anything


def test_train_all_takes_the_cluster_options_of_batch(capsys):
    with pytest.raises(SystemExit):
        AISegmentationCLI.main(["train", "all", "--help"])
    usage = capsys.readouterr().out
    for option in ("--scheduler", "--workers", "--tls-ca-file", "--tls-cert", "--tls-key", "--export", "--preset",
                   "--test-fraction"):
        assert option in usage, option


def test_train_model_by_address_needs_consent_before_any_step(logic, tmp_path):
    from distributed.security import Security

    logic.setClusterConsentStore(ConsentStore(None))
    project = tmp_path / "project"
    security = Security(require_encryption=True)
    with pytest.raises(ValueError, match="not agreed to that yet. Nothing was sent"):
        logic.trainModel(str(project), manifest=_manifest(tmp_path), numberOfFolds=2,
                         scheduler="tls://192.0.2.10:8786", security=security)
    assert not project.exists()
