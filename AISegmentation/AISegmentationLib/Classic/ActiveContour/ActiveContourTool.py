"""The Active contour tool: a geodesic active contour (level set) started from a segment's content moves to the
source volume's edges; preview, update, then apply (one undo state) or cancel."""

from ...Options import Option
from ..Tool import ClassicTool
from .ActiveContourSession import DEFAULTS, MAXIMUM_ITERATIONS, ActiveContourSession


class ActiveContourTool(ClassicTool):
    name = "active-contour"
    title = "Active contour"
    help = ("A geodesic active contour (level set) starts from the segment's content (a rough segmentation) and moves "
            "to the edges of the source volume: propagation expands (> 0) or shrinks (< 0) it, curvature smooths it, "
            "advection pulls it onto edges. Preview, then apply (one undo state) or cancel.")
    options = (
        Option("propagation", "float", DEFAULTS["propagation"], "expansion (> 0) or shrinking (< 0) weight, slowed "
               "by edges"),
        Option("curvature", "float", DEFAULTS["curvature"], "smoothness weight", minimum=0.0),
        Option("advection", "float", DEFAULTS["advection"], "weight of the pull onto edges", minimum=0.0),
        Option("iterations", "int", DEFAULTS["iterations"], "level-set iterations (it stops earlier once converged)",
               minimum=1, maximum=MAXIMUM_ITERATIONS),
        Option("edgeScaleMm", "float", DEFAULTS["edgeScaleMm"], "smoothing of the gradient magnitude (Gaussian "
               "sigma)", unit="mm", minimum=0.0, minimumInclusive=False, flag="edge-scale", title="Edge scale"),
        Option("edgeStrength", "float", DEFAULTS["edgeStrength"], "gradient magnitude (intensity per mm) where the "
               "contour's speed halves; empty: the 90th percentile of the region's gradient", minimum=0.0,
               minimumInclusive=False),
    )
    needs = ("segment",)
    preview = True

    def startPreview(self, inputs, **options):
        """An ActiveContourSession (update(), apply(), cancel(), setOptions()); bad input: ValueError, nothing
        written."""
        options = {name: value for name, value in options.items() if name in DEFAULTS}
        return ActiveContourSession(inputs.segmentEditor, inputs.segmentationNode, inputs.volumeNode, inputs.segmentId,
                                    **options)

    def run(self, inputs, **options):
        """Compute and apply at once; returns the session (lastComputationSeconds, lastInfo)."""
        session = self.startPreview(inputs, **options)
        session.apply()
        return session
