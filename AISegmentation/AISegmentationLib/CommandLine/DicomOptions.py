"""DICOM options of the CLI's commands that read or write a segmentation (Main.py and Segment.py add them).

    --dicom-seg-output OUT.dcm   also write the result as a DICOM SEG referencing the source series
    --rtstruct-output OUT.dcm    also write the result as an RTSTRUCT (contours) on the source series
    --series DIR                 the DICOM series those outputs reference, and on which a DICOM SEG / RTSTRUCT input
                                 (--segmentation, compare's inputs) is read; default: the input volume when it is
                                 a DICOM series folder
"""

import os

OUTPUT_ARGUMENTS = ("dicom_seg_output", "rtstruct_output")


def addSeriesArgument(parser):
    parser.add_argument("--series", metavar="DIR",
                        help="DICOM series folder that DICOM outputs reference and DICOM SEG / RTSTRUCT inputs are "
                             "read on (default: the input volume when it is a DICOM series folder)")


def addDicomOutputArguments(parser, series=True):
    parser.add_argument("--dicom-seg-output", metavar="PATH",
                        help="also write the segmentation as a DICOM SEG referencing the source DICOM series")
    parser.add_argument("--rtstruct-output", metavar="PATH",
                        help="also write the segmentation as a DICOM RTSTRUCT (contours) on the source DICOM series")
    if series:
        addSeriesArgument(parser)


def sourceSeries(args, volumePath=None):
    """The DICOM series folder of --series, else the input volume's path when it is a folder, else None."""
    if getattr(args, "series", None):
        return args.series
    return volumePath if volumePath and os.path.isdir(volumePath) else None


def writeDicomOutputs(logic, args, segmentation, volumePath=None):
    """Write --dicom-seg-output / --rtstruct-output when asked; ValueError when no DICOM series is known."""
    wanted = [(name, getattr(args, name, None)) for name in OUTPUT_ARGUMENTS if getattr(args, name, None)]
    if not wanted:
        return
    series = sourceSeries(args, volumePath)
    if series is None:
        raise ValueError("--dicom-seg-output / --rtstruct-output reference a DICOM series: the input volume is no "
                         "DICOM folder, so give the series with --series DIR")
    for name, path in wanted:
        if name == "dicom_seg_output":
            print(f"DICOM SEG: {logic.exportDicomSeg(segmentation, series, path)}")
        else:
            print(f"RTSTRUCT: {logic.exportRtStruct(segmentation, series, path)}")
