"""Matching is a choice (value | name | auto: by name only when both sides carry names) and a label mapping
homogenizes synonyms and label values into one structure name, for either side, reported in the rows; bad match
modes and mappings are a ValueError naming the file and the entry, with nothing written. Real data: TotalSegmentator's
example segmentation, relabelled as another protocol would."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from AISegmentationLib.Cohort import CaseTask
from AISegmentationLib.CommandLine.Main import main
from AISegmentationLib.Comparison import SegmentComparison
from AISegmentationLib.Comparison.LabelMatching import readLabelMapping

LIVER, SPLEEN = 5, 1


def _write(array, like, path, names=None):
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(like)
    sitk.WriteImage(image, str(path))
    if names is not None:
        (path.parent / (path.name + ".labels.json")).write_text(json.dumps({str(k): v for k, v in names.items()}))
    return str(path)


def _protocols(sampleFile, folder):
    """(reference with a name table, the same map relabelled: liver 60 named 'liver_1', spleen 61 unnamed, the
    rest unchanged and unnamed; the arrays)."""
    image = sitk.ReadImage(sampleFile("example_seg.nii.gz"))
    reference = sitk.GetArrayFromImage(image)
    compared = reference.copy()
    compared[reference == LIVER], compared[reference == SPLEEN] = 60, 61
    names = {int(value): f"organ {value}" for value in np.unique(reference) if value}
    names.update({LIVER: "Liver", SPLEEN: "Spleen"})
    return (_write(reference, image, folder / "reference.nii.gz", names),
            _write(compared, image, folder / "other_protocol.nii.gz", {60: "liver_1"}), reference, compared)


MAPPING = {"reference": {"liver": ["Liver"], "spleen": [SPLEEN]}, "compared": {"liver": "LIVER_1", "spleen": 61}}


def test_a_name_table_on_one_side_only_pairs_by_value_in_the_cohort(logic, sampleFile, tmp_path):
    image = sitk.ReadImage(sampleFile("example_seg.nii.gz"))
    reference = sitk.GetArrayFromImage(image)
    names = {int(value): f"organ {value}" for value in np.unique(reference) if value}
    referencePath = _write(reference, image, tmp_path / "reference.nii.gz", names)
    case = {"case": "named", "images": [sampleFile("example_ct_sm.nii.gz")], "reference": referencePath,
            "prediction": sampleFile("example_seg_fast.nii.gz")}
    record = CaseTask.runCase(case, str(tmp_path / "out"), steps=("compare",), logic=logic)
    assert record["status"] == "done", record["error"]
    paired = [entry for entry in record["metrics"] if entry["referenceSegment"] and entry["comparedSegment"]]
    assert len(paired) >= 35
    liver = next(entry for entry in paired if entry["referenceSegment"] == "organ 5")
    assert liver["comparedSegment"] == "Label 5" and liver["structure"] == "organ 5" and liver["dice"] > 0.9


def test_cli_auto_match_pairs_by_value_when_one_side_has_no_names(sampleFile, tmp_path, capsys):
    image = sitk.ReadImage(sampleFile("example_seg.nii.gz"))
    reference = sitk.GetArrayFromImage(image)
    referencePath = _write(reference, image, tmp_path / "reference.nii.gz")
    jsonPath = tmp_path / "rows.json"
    assert main(["compare", referencePath, sampleFile("example_seg.nii.gz"), "--reference-labels",
                 f"{LIVER}=liver", "--device", "cpu", "--json", str(jsonPath)]) == 0
    rows = json.loads(jsonPath.read_text())
    liver = next(row for row in rows if row["referenceSegment"] == "liver")
    assert liver["comparedSegment"] == "Label 5" and liver["dice"] == 1.0
    assert main(["compare", referencePath, sampleFile("example_seg.nii.gz"), "--reference-labels",
                 f"{LIVER}=liver", "--match", "name", "--device", "cpu", "--json", str(jsonPath)]) == 0
    rows = json.loads(jsonPath.read_text())  # by name: 'liver' and 'Label 5' are rows of their side only
    assert {(row["referenceSegment"], row["comparedSegment"]) for row in rows} >= {("liver", None), (None, "Label 5")}


@pytest.mark.parametrize("form", ["json", "csv", "dict"])
def test_a_mapping_homogenizes_names_and_values_of_either_side(logic, sampleFile, tmp_path, form):
    referencePath, comparedPath, reference, compared = _protocols(sampleFile, tmp_path)
    if form == "json":
        mapping = tmp_path / "mapping.json"
        mapping.write_text(json.dumps(MAPPING))
    elif form == "csv":
        mapping = tmp_path / "mapping.csv"
        mapping.write_text("source,structure,side\nLiver,liver,reference\nliver_1,liver,compared\n"
                           f"{SPLEEN},spleen,reference\n61,spleen,compared\n")
    else:
        mapping = MAPPING
    rows = logic.compareLabelmapFiles(referencePath, comparedPath, referenceLabels=f"{referencePath}.labels.json",
                                      comparedLabels=f"{comparedPath}.labels.json", mapping=mapping, device="cpu")
    byStructure = {row["structure"]: row for row in rows}
    assert (byStructure["liver"]["referenceSegment"], byStructure["liver"]["comparedSegment"]) == ("Liver", "liver_1")
    assert (byStructure["spleen"]["referenceSegment"], byStructure["spleen"]["comparedSegment"]) == ("Spleen",
                                                                                                    "Label 61")
    spacing = sitk.ReadImage(referencePath).GetSpacing()[::-1]
    for structure, referenceValue, comparedValue in (("liver", LIVER, 60), ("spleen", SPLEEN, 61)):
        expected = SegmentComparison.compareMasks(reference == referenceValue, compared == comparedValue, spacing,
                                                  device="cpu")  # oracle: the engine on the two masks
        assert byStructure[structure]["result"].asDict() == expected.asDict()
    unnamed = [row for row in rows if row["structure"].startswith("organ ")]
    assert unnamed and all(row["comparedSegment"] is None for row in unnamed)  # 'organ 2' vs 'Label 2': by name


def test_cli_reports_which_source_became_which_structure(sampleFile, tmp_path, capsys):
    referencePath, comparedPath, *_ = _protocols(sampleFile, tmp_path)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING))
    csvPath, jsonPath = tmp_path / "rows.csv", tmp_path / "rows.json"
    assert main(["compare", referencePath, comparedPath, "--reference-labels", f"{referencePath}.labels.json",
                 "--compared-labels", f"{comparedPath}.labels.json", "--mapping", str(mapping), "--device", "cpu",
                 "--csv", str(csvPath), "--json", str(jsonPath)]) == 0
    printed = capsys.readouterr().out
    assert "compared 'Label 61' -> structure 'spleen'" in printed
    assert "reference 'Liver' -> structure 'liver'" in printed
    assert "Liver,liver_1," in csvPath.read_text() and csvPath.read_text().splitlines()[0].endswith(",Structure")
    assert {"referenceSegment": "Liver", "comparedSegment": "liver_1", "structure": "liver"}.items() <= next(
        row for row in json.loads(jsonPath.read_text()) if row["structure"] == "liver").items()


def test_segmentations_match_by_the_chosen_mode_and_the_cohort_takes_the_mapping(logic, sampleFile, tmp_path):
    referencePath, comparedPath, *_ = _protocols(sampleFile, tmp_path)
    referenceNode = logic.importLabelmap(referencePath, f"{referencePath}.labels.json")
    comparedNode = logic.importLabelmap(comparedPath, f"{comparedPath}.labels.json")
    byValue, _table = logic.compareSegmentations(referenceNode, comparedNode, match="value", device="cpu")
    organ2 = next(row for row in byValue if row["referenceSegment"] == "organ 2")
    assert organ2["comparedSegment"] == "Label 2" and organ2["result"].dice == 1.0
    mapped, _table = logic.compareSegmentations(referenceNode, comparedNode, mapping=MAPPING, device="cpu")
    assert {row["structure"]: row["comparedSegment"] for row in mapped}["liver"] == "liver_1"
    cases = CaseTask.withCompareOptions([{"case": "mapped", "images": [sampleFile("example_ct_sm.nii.gz")],
                                          "reference": referencePath, "prediction": comparedPath}],
                                        ("compare",), "auto", MAPPING)
    unchanged = CaseTask.withCompareOptions(cases[:1], ("compare",))
    assert CaseTask.configurationKey({**cases[0], "compare": None}, ("compare",), None, {}) == \
        CaseTask.configurationKey({k: v for k, v in cases[0].items() if k != "compare"}, ("compare",), None, {})
    assert unchanged[0]["compare"] == cases[0]["compare"]
    record = CaseTask.runCase(json.loads(json.dumps(cases[0])), str(tmp_path / "out"), steps=("compare",),
                              logic=logic)
    assert record["status"] == "done", record["error"]
    assert {entry["structure"]: entry["comparedSegment"] for entry in record["metrics"]}["spleen"] == "Label 61"


def _bad(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, text, message", [
    ("two_values.json", json.dumps({"liver": [5, 6]}), r"two_values\.json.*entry 'liver'.*two values of one side"),
    ("sides.json", json.dumps({"reference": {"liver": [5]}, "compared": {"liver": 6, "kidney": 6}}),
     r"sides\.json.*entry 'kidney' of 'compared'.*maps 6 to 'kidney'.*'liver'"),
    ("broken.json", '{"liver": [5,', r"broken\.json.*not valid JSON"),
    ("list.json", "[1, 2]", r"list\.json.*JSON object"),
    ("background.json", json.dumps({"liver": 0}), r"background\.json.*entry 'liver'.*value 0"),
    ("bad.csv", "source,structure\nLiver\n", r"bad\.csv.*line 2"),
    ("side.csv", "source,structure,side\n5,liver,left\n", r"side\.csv.*line 2.*side 'left'"),
    ("header.csv", "name,label\n5,liver\n", r"header\.csv.*first line"),
])
def test_a_bad_mapping_names_the_file_and_the_entry_and_nothing_is_written(logic, sampleFile, tmp_path, name, text,
                                                                           message):
    mapping = _bad(tmp_path, name, text)
    with pytest.raises(ValueError, match=message):
        readLabelMapping(mapping)
    csvPath = tmp_path / "rows.csv"
    with pytest.raises(ValueError, match=message):
        logic.compareLabelmapFiles(sampleFile("example_seg.nii.gz"), sampleFile("example_seg.nii.gz"),
                                   mapping=str(mapping), csvPath=str(csvPath))
    assert main(["compare", sampleFile("example_seg.nii.gz"), sampleFile("example_seg.nii.gz"), "--mapping",
                 str(mapping), "--csv", str(csvPath)]) == 2
    assert not csvPath.exists()


def test_two_segments_of_one_side_made_one_structure_and_bad_modes_are_refused(logic, sampleFile, tmp_path):
    mapping = {"liver": ["Liver", "organ 2"]}  # names: one synonym each, but both exist on the reference side
    referencePath, comparedPath, *_ = _protocols(sampleFile, tmp_path)
    with pytest.raises(ValueError, match=r"'organ 2' and 'Liver' of the reference side both become 'liver'"):
        logic.compareLabelmapFiles(referencePath, comparedPath, f"{referencePath}.labels.json", mapping=mapping)
    with pytest.raises(ValueError, match="match must be one of"):
        logic.compareLabelmapFiles(referencePath, comparedPath, match="colour")
    with pytest.raises(ValueError, match="match must be one of"):
        CaseTask.withCompareOptions([], ("compare",), "colour")
    with pytest.raises(ValueError, match="pairs structures by name"):
        logic.compareLabelmapFiles(referencePath, comparedPath, match="value", mapping=MAPPING)
    with pytest.raises(SystemExit) as exit:  # argparse refuses it, exit code 2
        main(["compare", referencePath, comparedPath, "--match", "colour"])
    assert exit.value.code == 2


def test_batch_takes_the_match_mode_and_the_mapping_for_its_compare_step():
    from AISegmentationLib.CommandLine.Main import buildParser

    batch = buildParser()._subparsers._group_actions[0].choices["batch"]
    actions = {action.dest: action for action in batch._actions}
    assert actions["match"].choices == ["auto", "value", "name"] and actions["match"].default == "auto"
    assert actions["mapping"].default is None and "--mapping" in actions["mapping"].option_strings
