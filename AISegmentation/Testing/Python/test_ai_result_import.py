"""A backend's label table is validated before any segment is made from it (no backend environment needed)."""

import json

import numpy as np
import pytest

from AISegmentationLib.Backends.Jobs import ResultImport

GOOD = {"1": {"name": "liver", "color": [221, 130, 101],
              "category": ["SCT", "123037004", "Anatomical Structure"], "type": ["SCT", "10200004", "Liver"]},
        "2": {"name": "spleen"}}


def writeTable(tmp_path, labels, name="labels.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"labels": labels}), encoding="utf-8")
    return str(path)


def test_a_good_label_table_reads_with_names_colours_and_terminology(tmp_path):
    names = ResultImport.readLabelNames(writeTable(tmp_path, GOOD))
    assert sorted(names) == [1, 2] and names[1]["color"] == [221, 130, 101] and "color" not in names[2]
    assert ResultImport.terminologyEntry(names[1]).count("~") == 6 and ResultImport.terminologyEntry(names[2]) is None


@pytest.mark.parametrize("entry, phrases", [
    ({"name": "liver", "color": "red"}, ["Label 1", "malformed colour 'red'", "three integers 0..255"]),
    ({"name": "liver", "color": [255, 0]}, ["Label 1", "malformed colour"]),
    ({"name": "liver", "color": [300, 0, 0]}, ["malformed colour [300, 0, 0]"]),
    ({"name": "liver", "color": [0.5, 0.2, 0.1]}, ["malformed colour"]),
    ({"name": "liver", "color": [True, 0, 0]}, ["malformed colour"]),
    ({"name": "liver", "type": 5}, ["malformed terminology code 'type'"]),
    ({"name": "liver", "type": ["SCT", 10200004, "Liver"]}, ["malformed terminology code 'type'"]),
    ({"name": "liver", "category": ["SCT", "1~2", "x"]}, ["malformed terminology code 'category'"]),
    ({"name": ["liver"]}, ["gave label 1 no name"]),
    ({"name": "  "}, ["gave label 1 no name"]),
    ({"name": "liver\nspleen"}, ["control characters"]),
    ("liver", ["Label 1", "is not a table"]),
])
def test_a_malformed_label_entry_is_a_clear_runtime_error(tmp_path, entry, phrases):
    path = writeTable(tmp_path, {"1": entry})
    with pytest.raises(RuntimeError) as raised:
        ResultImport.readLabelNames(path)
    for phrase in phrases:
        assert phrase in str(raised.value)
    assert path in str(raised.value)


@pytest.mark.parametrize("labels, phrase", [
    ({"one": {"name": "liver"}}, "label value 'one' that is not an integer"),
    ({"-3": {"name": "liver"}}, "label value -3, outside 0..2147483647"),
    ({"1": {"name": "liver"}, "01": {"name": "spleen"}}, "lists label 1 twice"),
    ({"1": {"name": "liver"}, "2": {"name": "liver"}}, "Labels 1 and 2 from"),
    (["liver", "spleen"], "is not a table of label values"),
])
def test_a_malformed_label_table_is_a_clear_runtime_error(labels, phrase):
    with pytest.raises(RuntimeError, match="backend") as raised:
        ResultImport.validateLabelTable(labels, "the backend 'phantom'")
    assert phrase in str(raised.value)


def test_an_unreadable_label_file_names_the_file(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text('{"labels": [1, 2]}', encoding="utf-8")
    with pytest.raises(RuntimeError, match="no \"labels\" table"):
        ResultImport.readLabelNames(str(path))
    path.write_text('{"labels": ', encoding="utf-8")
    with pytest.raises(RuntimeError, match="missing or malformed"):
        ResultImport.readLabelNames(str(path))


def test_a_float_label_map_with_huge_or_negative_values_is_refused(logic, tmp_path):
    import SimpleITK as sitk
    from DevTools.SyntheticImages import makeVolume

    volume = makeVolume(logic, np.zeros((4, 5, 6), np.int16))
    for value in (1e12, -2.0):
        labels = np.zeros((4, 5, 6), np.float32)
        labels[1, 2, 3] = value
        path = str(tmp_path / "labels.nrrd")
        image = sitk.GetImageFromArray(labels)
        image.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))  # the volume's RAS identity, in LPS
        sitk.WriteImage(image, path)
        with pytest.raises(RuntimeError, match="label map with values outside 0..2147483647"):
            ResultImport.readLabelmap(path, volume)
