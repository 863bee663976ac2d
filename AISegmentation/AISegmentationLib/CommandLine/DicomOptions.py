"""DICOM options of the CLI's commands that read or write a segmentation (Main.py and Segment.py add them).

    --dicom-seg-output OUT.dcm   also write the result as a DICOM SEG referencing the source series
    --rtstruct-output OUT.dcm    also write the result as an RTSTRUCT (contours) on the source series
    --series DIR                 the DICOM series those outputs reference, and on which a DICOM SEG / RTSTRUCT input
                                 (--segmentation, compare's inputs) is read; default: the input volume when it is
                                 a DICOM series folder
"""

import os

from ..Cohort.CohortLogic import CohortLogic

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


def addDicomWebArguments(parser):
    """batch's PACS options: the server, what to retrieve, what to store back."""
    group = parser.add_argument_group("PACS (DICOMweb): retrieve the series, store the results back")
    group.add_argument("--dicomweb", metavar="URL",
                       help="DICOMweb service, e.g. https://pacs/dicom-web (http only on this machine); passing it is "
                            "the consent to exchange images with it, for this run only")
    group.add_argument("--dicomweb-credentials", metavar="FILE",
                       help="JSON file {\"username\": ..., \"password\": ...} or {\"token\": ...} (default: "
                            "$AISEGMENTATION_DICOMWEB_USERNAME / _PASSWORD or _TOKEN); never on the command line")
    group.add_argument("--dicomweb-ca-file", metavar="PEM", help="CA bundle that signed the server's certificate")
    group.add_argument("--study", action="append", default=[], metavar="UID",
                       help="a study on the server: each of its CT / MR / PET series is a case (repeatable)")
    group.add_argument("--dicomweb-series", action="append", default=[], metavar="STUDY_UID/SERIES_UID",
                       help="one series on the server as a case (repeatable)")
    group.add_argument("--store-rtstruct", action="store_true",
                       help="also store an RTSTRUCT of each case's result (the DICOM SEG is always stored)")
    group.add_argument("--no-store", action="store_true", help="store nothing back on the server")
    group.add_argument("--keep-retrieved", action="store_true",
                       help="keep the retrieved series in OUTPUT/.pacs-retrieved (removed by default)")


class PacsBatch:
    """batch --dicomweb: the cohort through CohortLogic.runPacsCohort, its transfers printed after the summary."""

    def __init__(self, logic, args):
        from ..Consent import ConsentStore

        self.logic, self.args = logic, args
        if not args.manifest and not args.study and not args.dicomweb_series:
            raise ValueError("--dicomweb needs cases: --study UID, --dicomweb-series STUDY/SERIES, or a manifest "
                             "whose images are dicomweb:STUDY/SERIES")
        logic.setDicomWebConsentStore(ConsentStore(None))
        logic.allowDicomWeb(args.dicomweb)
        self.server = logic.connectDicomWeb(args.dicomweb, credentialsFile=args.dicomweb_credentials,
                                            caBundle=args.dicomweb_ca_file)
        self.result = None

    def run(self, manifest, outputDir, **options):
        args = self.args
        self.result = CohortLogic(self.logic).runPacsCohort(self.server, outputDir, studies=args.study,
                                               series=args.dicomweb_series, manifest=manifest,
                                               storeSeg=not args.no_store, storeRtStruct=args.store_rtstruct
                                               and not args.no_store, keepRetrieved=args.keep_retrieved, **options)
        if self.result.cohort is None:
            raise ValueError("No case could be retrieved from the PACS:\n" + "\n".join(self.lines()))
        return self.result.cohort

    def lines(self):
        from ..Dicom.PacsLogic import describeTransfers

        return describeTransfers(self.result) if self.result else []

    def finish(self, raiseOnFailure=True):
        """Print the transfers; ValueError when any failed (the exit code is 2, as for a failed case)."""
        for line in self.lines():
            print(line)
        failed = self.result.failedTransfers if self.result else []
        if failed and raiseOnFailure:
            raise ValueError(f"{len(failed)} PACS transfer(s) failed (see above and pacs.json)")
