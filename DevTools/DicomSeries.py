"""Test helper: a copy of a DICOM series whose emptied study and series UIDs are filled in.

TotalSegmentator's example CT series was anonymized down to empty StudyInstanceUID, SeriesInstanceUID,
SOPClassUID and SOPInstanceUID in every file (the file meta keeps the SOP UIDs). A DICOM SEG must reference the
study and series by UID, so tests of DICOM SEG outputs use a copy with the two filled in, as an archive would hold
it; everything else (pixel data still JPEG 2000, the empty SOP UIDs in the data set) is left as it is.
"""

import os

import pydicom
from pydicom.uid import generate_uid


def seriesWithUids(sourceFolder, targetFolder):
    """Copy the series in sourceFolder to targetFolder, filling empty StudyInstanceUID / SeriesInstanceUID with
    UIDs derived from the source folder's name (the same on every call). Returns targetFolder."""
    os.makedirs(targetFolder, exist_ok=True)
    name = os.path.basename(os.path.normpath(sourceFolder))
    filled = {"StudyInstanceUID": generate_uid(entropy_srcs=[name, "study"]),
              "SeriesInstanceUID": generate_uid(entropy_srcs=[name, "series"])}
    for fileName in sorted(os.listdir(sourceFolder)):
        if fileName.startswith("."):
            continue
        dataset = pydicom.dcmread(os.path.join(sourceFolder, fileName))
        for keyword, uid in filled.items():
            if not str(dataset.get(keyword, "")).strip():
                setattr(dataset, keyword, uid)
        dataset.save_as(os.path.join(targetFolder, fileName), enforce_file_format=True)
    return targetFolder
