"""Classic tools are plugins (Classic/<Tool>/ + one registry line): a tool declared nowhere else runs through the
Logic (options validated, masking and one undo state through the segment editor), as a job with progress and cancel,
and gets its `aisegmentation <tool>` subcommand from its declaration."""

import threading

import numpy as np
import pytest

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Classic import Registry
from AISegmentationLib.Classic.Tool import ClassicTool
from AISegmentationLib.Geometry import orientedImageFromArray
from AISegmentationLib.Options import Option
from DevTools.SyntheticImages import makeVolume


class BrightTool(ClassicTool):
    """Voxels at or above a level become the segment (a test tool: declared here, registered by the test)."""

    name, title, help = "bright", "Bright voxels", "voxels at or above a level"
    options = (Option("level", "float", 100.0, "lowest intensity kept", minimum=-1000.0),)
    needs = ("segment",)

    def run(self, inputs, level):
        image = inputs.segmentEditor.bind(inputs.segmentationNode, inputs.volumeNode)
        import slicer

        mask = (slicer.util.arrayFromVolume(inputs.volumeNode) >= level).astype(np.uint8)
        inputs.segmentEditor.modifySegment(inputs.segmentationNode, inputs.segmentId, inputs.volumeNode,
                                           orientedImageFromArray(mask, image), "set")


class SlowBrightTool(BrightTool):
    """The same as a job tool: compute on a worker thread (waits for a gate, so the test can cancel it)."""

    name, job = "slow-bright", True
    gate = None

    def run(self, inputs, **options):
        return ClassicTool.run(self, inputs, **options)

    def compute(self, inputs, level):
        import slicer

        inputs.progress(10.0, "waiting for the gate")
        while not self.gate.wait(0.01):
            if inputs.cancelled():
                raise JobCancelledError("cancelled")
        return (slicer.util.arrayFromVolume(inputs.volumeNode) >= level).astype(np.uint8)

    def write(self, inputs, mask):
        image = inputs.segmentEditor.bind(inputs.segmentationNode, inputs.volumeNode)
        inputs.segmentEditor.modifySegment(inputs.segmentationNode, inputs.segmentId, inputs.volumeNode,
                                           orientedImageFromArray(mask, image), "set")
        return int(mask.sum())


@pytest.fixture
def registered(monkeypatch):
    tools = {**Registry.allTools(), "bright": BrightTool(), "slow-bright": SlowBrightTool()}
    monkeypatch.setattr(Registry, "_listed", tools)
    return tools


def _case(logic):
    image = np.zeros((6, 8, 10), np.int16)
    image[2:4, 2:6, 3:8] = 150
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume, "s")
    return volume, segmentation, logic.addSegment(segmentation, "bright"), image


def test_the_four_course_tools_are_registered_with_their_declarations(logic):
    tools = logic.classicTools()
    assert list(tools)[:4] == ["threshold", "level-trace", "grow-from-seeds", "islands"]  # then the newer ones
    assert tools["threshold"].actions == ("autoRange",) and tools["grow-from-seeds"].preview
    assert {option.name for option in tools["islands"].options} == {"operation", "minimumSize"}


def test_a_registered_tool_runs_through_the_logic_with_validated_options_and_one_undo_state(logic, registered):
    volume, segmentation, segmentId, image = _case(logic)
    with pytest.raises(ValueError, match="level"):
        logic.runClassicTool("bright", volume, segmentation, segmentId, level="high")
    with pytest.raises(ValueError, match="Unknown option"):
        logic.runClassicTool("bright", volume, segmentation, segmentId, bogus=1)
    assert logic.segmentArray(segmentation, segmentId, volume).sum() == 0  # nothing written
    logic.runClassicTool("bright", volume, segmentation, segmentId)  # the declared default: 100
    assert int(logic.segmentArray(segmentation, segmentId, volume).sum()) == int((image >= 100).sum()) == 40
    logic.undo(segmentation)
    assert logic.segmentArray(segmentation, segmentId, volume).sum() == 0


def test_a_job_tool_reports_progress_writes_on_wait_and_writes_nothing_when_cancelled(logic, registered):
    volume, segmentation, segmentId, _image = _case(logic)
    SlowBrightTool.gate = threading.Event()
    job = logic.startClassicTool("slow-bright", volume, segmentation, segmentId, level=100)
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait(timeout=30)
    assert logic.segmentArray(segmentation, segmentId, volume).sum() == 0
    job = logic.startClassicTool("slow-bright", volume, segmentation, segmentId, level=100)
    SlowBrightTool.gate.set()
    assert job.wait(timeout=30) == 40 and job.progress == 100.0
    assert int(logic.segmentArray(segmentation, segmentId, volume).sum()) == 40
    with pytest.raises(ValueError, match="not a job tool"):
        logic.startClassicTool("bright", volume, segmentation, segmentId)


def test_a_registered_tool_gets_its_cli_subcommand_from_its_declaration(registered):
    from AISegmentationLib.CommandLine.Main import buildParser

    parser = buildParser()
    args = parser.parse_args(["bright", "ct.nrrd", "--segment", "b", "--output", "o.seg.nrrd", "--level", "7"])
    assert args.command == "bright" and args.option_level == 7.0
    with pytest.raises(SystemExit):
        parser.parse_args(["bright", "ct.nrrd", "--segment", "b", "--output", "o.seg.nrrd", "--level", "x"])
    args = parser.parse_args(["threshold", "ct.nrrd", "--segment", "b", "--output", "o.seg.nrrd", "--range", "1", "2"])
    assert args.range == [1.0, 2.0]  # the hand-written subcommands keep their flags


def test_the_generated_subcommand_runs_the_tool_on_files(logic, registered, tmp_path):
    from AISegmentationLib.CommandLine.Main import main

    volume, _segmentation, _segmentId, image = _case(logic)
    path = str(tmp_path / "ct.nrrd")
    logic.saveVolume(volume, path)
    output = tmp_path / "bright.seg.nrrd"
    assert main(["bright", path, "--segment", "b", "--output", str(output), "--level", "-1000"]) == 0
    segmentation = logic.loadSegmentation(str(output))
    segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("b")
    assert int(logic.segmentArray(segmentation, segmentId, logic.loadVolume(path)).sum()) == image.size
    assert main(["bright", path, "--segment", "b", "--output", str(tmp_path / "x.seg.nrrd"),
                 "--level", "-5000"]) == 2  # below the declared minimum: a clear error, nothing written
    assert not (tmp_path / "x.seg.nrrd").exists()
