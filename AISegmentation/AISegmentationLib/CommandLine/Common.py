"""What the command line's subcommand modules share (Main builds the parser from them and they never import Main):
the SIGTERM exception, the input / masking / match arguments, loading the inputs and saving a result."""

import os

from .DicomOptions import addDicomOutputArguments, sourceSeries, writeDicomOutputs


class Terminated(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error of the program
    """SIGTERM turned into an exception in the main thread, so that every `finally` and atomic write cleans up."""


def addVolumeOptions(parser):
    parser.add_argument("--accept-irregular-spacing", action="store_true",
                        help="load a DICOM series with a missing slice or an uneven slice spacing anyway, resampled "
                             "onto a regular grid (recorded in the volume's provenance); refused by default")


def addInputs(parser, segmentRequired=True):
    from ..SegmentEditing import MASK_MODES, OVERWRITE_MODES

    parser.add_argument("volume", help="source volume: NRRD, NIfTI, MHA file or a DICOM series folder")
    addVolumeOptions(parser)
    parser.add_argument("--segmentation", help="existing .seg.nrrd to edit (default: a new, empty segmentation)")
    if segmentRequired:
        parser.add_argument("--segment", required=True, help="name of the segment to write (created if missing)")
    parser.add_argument("--output", required=True, help="output segmentation file (.seg.nrrd)")
    parser.add_argument("--labelmap-output", help="also export all segments as a label-map image (e.g. .nii.gz)")
    addDicomOutputArguments(parser)
    masking = parser.add_argument_group("masking (as in the Segment Editor)")
    masking.add_argument("--mask-mode", default="everywhere", choices=list(MASK_MODES), help="editable area")
    masking.add_argument("--mask-segment", help="segment name for --mask-mode insideSingleSegment")
    masking.add_argument("--overwrite-mode", default="allSegments", choices=list(OVERWRITE_MODES),
                         help="which other segments a write may overwrite")
    masking.add_argument("--intensity-range", nargs=2, type=float, metavar=("MIN", "MAX"),
                         help="only voxels with source intensity in this range may be edited")


def addMatchArguments(parser):
    """--match and --mapping (compare, batch)."""
    from ..Comparison.LabelMatching import MATCH_MODES

    parser.add_argument("--match", default="auto", choices=list(MATCH_MODES),
                        help="pair segments by label value or by name; auto (default): by name when both sides carry "
                             "names (a .seg.nrrd, a label map with a name table) or a mapping is given, else by value")
    parser.add_argument("--mapping", metavar="FILE",
                        help="label homogenization: JSON {\"liver\": [\"Liver\", \"liver_1\", 6]} (or one such "
                             "object per side under \"reference\" / \"compared\"), or CSV source,structure[,side]: "
                             "synonyms and label values become one structure name, then segments pair by name")


def loadVolume(logic, args, path):
    return logic.loadVolume(path, acceptIrregularSpacing=getattr(args, "accept_irregular_spacing", False))


def prepareInputs(logic, args):
    volume = loadVolume(logic, args, args.volume)
    if args.segmentation:
        segmentation = logic.loadSegmentation(args.segmentation, sourceSeries=sourceSeries(args, args.volume))
    else:
        segmentation = logic.createSegmentation(volume, os.path.basename(args.output).split(".")[0])
    maskSegmentId = None
    if args.mask_segment:
        from ..Segments import segmentIdByName

        maskSegmentId = segmentIdByName(segmentation, args.mask_segment)
    logic.setMasking(args.mask_mode, maskSegmentId, args.overwrite_mode, args.intensity_range)
    return volume, segmentation


def saveOutputs(logic, args, volume, segmentation):
    writeDicomOutputs(logic, args, segmentation, args.volume)  # first: a refusal leaves nothing written
    print(f"Segmentation: {logic.saveSegmentation(segmentation, args.output)}")
    if args.labelmap_output:
        print(f"Label map: {logic.exportLabelmap(segmentation, volume, args.labelmap_output)[0]}")
    for row in logic.segmentStatistics(segmentation, volume):
        print(f"  {row['segment']:<24} {row['voxels']:>10} voxels {row['volumeMl']:>12.2f} mL")


def seedSegmentIds(logic, args, volume, segmentation):
    """The seed segments of --seed-segments NAME... and --seeds NAME=MARKUPS_FILE (painted first, --seed-radius mm)."""
    from ..Segments import segmentIdByName

    seedIds = [segmentIdByName(segmentation, name) for name in args.seed_segments]
    for item in args.seeds:
        name, separator, path = item.partition("=")
        if not separator or not name or not path:
            raise ValueError(f"--seeds takes NAME=MARKUPS_FILE, got '{item}'")
        segmentId = logic.getOrAddSegment(segmentation, name)
        logic.paintSeeds(volume, segmentation, segmentId, logic.loadMarkupsPoints(path), args.seed_radius)
        seedIds.append(segmentId)
    return seedIds
