"""What a classic tool is: :class:`ClassicTool` (its declaration and its run) and :class:`ToolInputs` (what a run
receives). See Registry.py for how to add one."""

from dataclasses import dataclass, field

import slicer

from ..Validation import countNonFinite

# What a tool may need besides its options; the Logic checks each before the run and the fronts ask for each.
NEEDS = (
    "segment",  # one target segment (ToolInputs.segmentId), which the run writes
    "seedSegments",  # two or more seed segments (ToolInputs.seedSegmentIds; the panel: the visible segments)
    "seedPoint",  # one point in RAS millimetres inside the volume (ToolInputs.seedPoints, one item)
    "seedPoints",  # one or more points in RAS millimetres inside the volume (ToolInputs.seedPoints)
    "volumes",  # several volumes besides the source volume (ToolInputs.volumes), e.g. atlas images
)


@dataclass
class ToolInputs:
    """Everything a run gets besides its options. segmentEditor writes (modifySegment / modifySegments: masking,
    overwrite mode, one undo state); scene is the MRML scene (for a preview node, say). progress(percent, message)
    and cancelled() serve a tool that runs as a job (ClassicTool.job); they do nothing otherwise."""

    segmentEditor: object
    scene: object
    volumeNode: object
    segmentationNode: object
    segmentId: str = None
    seedSegmentIds: list = field(default_factory=list)
    seedPoints: list = field(default_factory=list)
    volumes: list = field(default_factory=list)
    progress: object = lambda percent, message: None
    cancelled: object = lambda: False


class ClassicTool:
    """A classic tool's declaration (class attributes) and its run (methods). One instance per tool (the registry's).

    Declaration: name (the key: ``runClassicTool(name, ...)``, ``aisegmentation <name>``), title, help, options
    (AISegmentationLib.Options.Option declarations, in the fronts' order), needs (items of NEEDS), actions (names of
    methods ``action(inputs, **options) -> {option name: new value}`` that the fronts offer as buttons, e.g. an
    automatic range), preview (the tool offers startPreview), job (the tool runs off the GUI thread: compute + write),
    handMadeFronts (leave it False: the fronts are generated from the declaration).
    """

    name = ""
    title = ""
    help = ""
    options = ()
    needs = ()
    actions = ()
    preview = False
    job = False
    handMadeFronts = False  # True only for the four first tools, whose panel controls, CLI flags and web elements
    # were written by hand before the declarations (and are kept); every other tool's fronts are generated

    def run(self, inputs, **options):
        """Compute and write (through inputs.segmentEditor); options are validated against the declarations. A job
        tool need not override it: the default computes and writes on the caller's thread."""
        if not self.job:
            raise NotImplementedError(f"{type(self).__name__} must define run(inputs, **options)")
        return self.write(inputs, self.compute(inputs, **options))

    def compute(self, inputs, **options):
        """A job tool's work, on a worker thread: read inputs (arrays, images), write nothing to the scene; call
        inputs.progress(percent, message) and stop with JobCancelledError when inputs.cancelled()."""
        raise NotImplementedError(f"{type(self).__name__} is not a job tool")

    def write(self, inputs, computed):
        """A job tool's write of what compute returned, on the caller's (GUI) thread; returns the run's result."""
        raise NotImplementedError(f"{type(self).__name__} is not a job tool")

    def startPreview(self, inputs, **options):
        """A preview tool's session: .update() (recompute after the inputs changed), .apply() (write, one undo
        state), .cancel() (write nothing), .seedSegmentIds, .previewArray(segmentId) (KJI 0/1 array on the source
        volume's grid), .segmentationNode and .sourceVolumeNode; Logic.showClassicPreview shows it."""
        raise NotImplementedError(f"{type(self).__name__} has no preview")


def requireFiniteVoxels(volumeNode, what):
    """ValueError when a float volume has NaN or infinite voxels (the tool's filter compares intensities)."""
    nonFinite = countNonFinite(slicer.util.arrayFromVolume(volumeNode))
    if nonFinite:
        raise ValueError(f"{what} cannot use volume '{volumeNode.GetName()}': {nonFinite} of its voxels are NaN or "
                         "infinite. Replace them with finite values first (threshold ignores them).")
