"""Comparison outputs of pairs that match fully, recorded with an earlier version of the code, so that a test can
check that a change leaves them unchanged to the last digit.

``python ComparisonBaseline.py OUTPUT.json`` (run with the PYTHONPATH of the version to record) compares
TotalSegmentator's example_seg.nii.gz with example_seg_fast.nii.gz (two label maps, by value) and the same two as
.seg.nrrd segmentations (by name), through the command line's JSON output, and writes
{"labelmaps": [rows], "segmentations": [rows]}. JSON keeps every float exactly (shortest repr).
"""

import json
import os
import sys
import tempfile

PAIR = ("example_seg.nii.gz", "example_seg_fast.nii.gz")


def dataPath(name):
    folder = os.environ.get("AISEGMENTATION_DATA_DIR", "/work/shared/data/totalsegmentator-examples")
    return os.path.join(folder, name)


def compareOutputs(main, folder):
    """{"labelmaps": rows, "segmentations": rows} of the CLI's `compare --json` on the pair (main: its entry)."""
    reference, compared = (dataPath(name) for name in PAIR)
    outputs = {}
    labelmapsJson = os.path.join(folder, "labelmaps.json")
    assert main(["compare", reference, compared, "--device", "cpu", "--json", labelmapsJson]) == 0
    segmentations = []
    for index, path in enumerate((reference, compared)):
        segmentationPath = os.path.join(folder, f"side{index}.seg.nrrd")
        assert main(["import-labelmap", path, "--output", segmentationPath]) == 0
        segmentations.append(segmentationPath)
    segmentationsJson = os.path.join(folder, "segmentations.json")
    assert main(["compare", *segmentations, "--device", "cpu", "--match", "name", "--json", segmentationsJson]) == 0
    for key, path in (("labelmaps", labelmapsJson), ("segmentations", segmentationsJson)):
        with open(path, encoding="utf-8") as file:
            outputs[key] = json.load(file)
    return outputs


if __name__ == "__main__":
    from AISegmentationLib.CommandLine.Main import main as cliMain

    with tempfile.TemporaryDirectory() as temporary:
        result = compareOutputs(cliMain, temporary)
    with open(sys.argv[1], "w", encoding="utf-8") as output:
        json.dump(result, output, indent=1)
