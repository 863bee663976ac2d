"""The Grow from seeds tool: two or more seed segments grow into the image (GrowCut), with a preview session."""

from ...Options import Option
from ...SegmentEditing import requireVolume
from ...Validation import requireNumber
from ..Tool import ClassicTool, requireFiniteVoxels
from . import GrowFromSeeds


class GrowFromSeedsTool(ClassicTool):
    name = "grow-from-seeds"
    title = "Grow from seeds"
    help = ("Two or more seed segments (the visible segments in the panel) grow into the image; preview, update after "
            "changing the seeds, then apply (one undo state) or cancel.")
    options = (
        Option("seedLocalityFactor", "float", 0.0, "how strongly growth is kept near the seeds (0: not at all)",
               minimum=0.0, flag="seed-locality", title="Seed locality"),
    )
    handMadeFronts = True  # the panel's, CLI's and web page's controls predate the declarations
    needs = ("seedSegments",)
    preview = True

    def startPreview(self, inputs, seedLocalityFactor=0.0, **ignored):
        """A GrowFromSeedsSession: .update(), .apply(), .cancel(); a volume with NaN or infinite voxels is refused."""
        requireNumber("seedLocalityFactor", seedLocalityFactor, minimum=0)
        requireVolume(inputs.volumeNode)
        requireFiniteVoxels(inputs.volumeNode, "Grow from seeds")
        return GrowFromSeeds.GrowFromSeedsSession(inputs.segmentEditor, inputs.segmentationNode, inputs.volumeNode,
                                                  inputs.seedSegmentIds, seedLocalityFactor)

    def run(self, inputs, seedLocalityFactor=0.0, **ignored):
        """Grow and apply at once; returns the session (its lastComputationSeconds)."""
        session = self.startPreview(inputs, seedLocalityFactor)
        session.apply()
        return session
