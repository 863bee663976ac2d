"""The Threshold tool: the voxels within a range (manual, or from an automatic method) become the segment."""

from ...Options import Option
from ...SegmentEditing import requireSegment, requireVolume
from ...Validation import requireRange
from ..Tool import ClassicTool
from . import Threshold


class ThresholdTool(ClassicTool):
    name = "threshold"
    title = "Threshold"
    help = ("Set the segment to the voxels with minimum <= intensity <= maximum (within the editable area); NaN and "
            "infinite voxels are never selected. Auto range: the range an automatic method gives.")
    options = (
        Option("minimum", "float", 200.0, "lowest intensity selected", flag="minimum"),
        Option("maximum", "float", 3071.0, "highest intensity selected", flag="maximum"),
        Option("method", "str", "Otsu", "automatic threshold method (Auto range)",
               choices=tuple(Threshold.AUTO_THRESHOLD_METHODS), flag="auto-method"),
        Option("mode", "str", "SET_LOWER_MAX", "how the automatic threshold sets the range (Auto range)",
               choices=Threshold.AUTO_THRESHOLD_MODES, flag="auto-mode"),
    )
    handMadeFronts = True  # the panel's, CLI's and web page's controls predate the declarations
    needs = ("segment",)
    actions = ("autoRange",)

    def run(self, inputs, minimum, maximum, **ignored):
        minimum, maximum = requireRange("Threshold range (minimum, maximum)", (minimum, maximum))
        requireSegment(inputs.segmentationNode, inputs.segmentId)
        sourceImage = inputs.segmentEditor.bind(inputs.segmentationNode, inputs.volumeNode)
        labelmap = Threshold.thresholdLabelmap(sourceImage, minimum, maximum)
        inputs.segmentEditor.modifySegment(inputs.segmentationNode, inputs.segmentId, inputs.volumeNode, labelmap,
                                           "set")

    def autoRange(self, inputs, method="Otsu", mode="SET_LOWER_MAX", minimum=None, maximum=None, **ignored):
        """{"minimum", "maximum"} from an automatic method and mode (on the finite voxels); the current range is
        (minimum, maximum) when both are given."""
        currentRange = None
        if minimum is not None and maximum is not None:
            currentRange = requireRange("currentRange (threshold range to update)", (minimum, maximum))
        requireVolume(inputs.volumeNode)
        low, high = Threshold.autoThresholdRange(inputs.volumeNode.GetImageData(), method, mode, currentRange)
        return {"minimum": low, "maximum": high}
