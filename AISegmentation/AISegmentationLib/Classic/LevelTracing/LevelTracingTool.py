"""The Level tracing tool: the region whose outline passes through a seed on an edge, on a plane or in 3D."""

from ...Geometry import requireInsideVolume
from ...Options import Option
from ...SegmentEditing import requireSegment, requireVolume
from ...Validation import requirePoints
from ..Tool import ClassicTool, requireFiniteVoxels
from . import LevelTracing

PLANES = (*LevelTracing.PLANES, "3D")


class LevelTracingTool(ClassicTool):
    name = "level-trace"
    title = "Level tracing"
    help = ("Trace the level curve through a seed on the edge of a structure: on the IJ, IK or JK plane through the "
            "seed (filled), or in 3D; the region is added to the segment (mode set replaces it).")
    options = (
        Option("plane", "str", "IJ", "2D plane through the seed, or 3D", choices=PLANES),
        Option("mode", "str", "add", "add the traced region to the segment, or replace the segment with it",
               choices=("add", "set")),
    )
    handMadeFronts = True  # the panel's, CLI's and web page's controls predate the declarations
    needs = ("segment", "seedPoint")

    def run(self, inputs, plane="IJ", mode="add", **ignored):
        seedRas = requirePoints("seedRas (level tracing seed, RAS)", inputs.seedPoints)
        if len(seedRas) != 1:
            raise ValueError(f"seedRas (level tracing seed, RAS) must be one point, got {len(seedRas)}")
        requireSegment(inputs.segmentationNode, inputs.segmentId)
        if plane not in PLANES:
            raise ValueError(f"Unknown level tracing plane '{plane}'; choose IJ, IK, JK or 3D")
        requireVolume(inputs.volumeNode)
        requireFiniteVoxels(inputs.volumeNode, "Level tracing")
        sourceImage = inputs.segmentEditor.bind(inputs.segmentationNode, inputs.volumeNode)
        seedIjk = requireInsideVolume(inputs.volumeNode, seedRas, "Level tracing seed")[0]
        if plane == "3D":
            labelmap = LevelTracing.levelTrace3D(sourceImage, seedIjk)
        else:
            labelmap = LevelTracing.levelTrace2D(sourceImage, seedIjk, plane)
        inputs.segmentEditor.modifySegment(inputs.segmentationNode, inputs.segmentId, inputs.volumeNode, labelmap,
                                           mode)
