"""The Islands tool: keep the largest island of a segment, or remove its islands below a size."""

from ...Options import Option
from ...SegmentEditing import requireSegment
from ..Tool import ClassicTool
from . import Islands

OPERATIONS = ("keepLargest", "removeSmall")


class IslandsTool(ClassicTool):
    name = "islands"
    title = "Islands"
    help = "Clean up a segment's islands (6-connected): keep only the largest one, or remove those below a size."
    options = (
        Option("operation", "str", "keepLargest", "keep the largest island, or remove the small islands",
               choices=OPERATIONS),
        Option("minimumSize", "int", 1000, "smallest island kept by removeSmall", unit="voxels",
               minimum=Islands.SIZE_RANGE[0], maximum=Islands.SIZE_RANGE[1], flag="remove-smaller-than",
               title="Minimum island size"),
    )
    handMadeFronts = True  # the panel's, CLI's and web page's controls predate the declarations
    needs = ("segment",)

    def run(self, inputs, operation="keepLargest", minimumSize=1000, **ignored):
        if operation not in OPERATIONS:
            raise ValueError(f"Unknown island operation '{operation}'; choose one of: {', '.join(OPERATIONS)}")
        if operation == "removeSmall":
            minimumSize = Islands.requireMinimumSize(minimumSize)
        segmentImage = self._segmentImage(inputs)
        if operation == "keepLargest":
            labelmap = Islands.keepLargestIsland(segmentImage)
        else:
            labelmap = Islands.removeSmallIslands(segmentImage, minimumSize)
        inputs.segmentEditor.modifySegment(inputs.segmentationNode, inputs.segmentId, inputs.volumeNode, labelmap,
                                           "set")

    @staticmethod
    def _segmentImage(inputs):
        requireSegment(inputs.segmentationNode, inputs.segmentId)
        labelmap = inputs.segmentEditor.segmentLabelmap(inputs.segmentationNode, inputs.segmentId, inputs.volumeNode)
        if labelmap.GetScalarRange()[1] == 0:
            name = inputs.segmentationNode.GetSegmentation().GetSegment(inputs.segmentId).GetName()
            raise ValueError(f"Segment '{name}' is empty: there are no islands to clean up")
        return labelmap
