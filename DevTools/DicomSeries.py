"""Test helper: a copy of a DICOM series whose emptied study and series UIDs are filled in.

TotalSegmentator's example CT series was anonymized down to empty StudyInstanceUID, SeriesInstanceUID,
SOPClassUID and SOPInstanceUID in every file (the file meta keeps the SOP UIDs). A DICOM SEG must reference the
study and series by UID, so tests of DICOM SEG outputs use a copy with the two filled in, as an archive would hold
it; everything else (pixel data still JPEG 2000, the empty SOP UIDs in the data set) is left as it is.
"""

import os

import pydicom
from pydicom.uid import generate_uid


def seriesWithUids(sourceFolder, targetFolder, sopUids=False):
    """Copy the series in sourceFolder to targetFolder, filling empty StudyInstanceUID / SeriesInstanceUID with
    UIDs derived from the source folder's name (the same on every call); sopUids=True also fills the data sets'
    empty SOPClassUID / SOPInstanceUID from the file meta (a PACS stores nothing without them). Returns
    targetFolder."""
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
        if sopUids:
            for keyword, metaKeyword in (("SOPClassUID", "MediaStorageSOPClassUID"),
                                         ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
                if not str(dataset.get(keyword, "")).strip():
                    setattr(dataset, keyword, dataset.file_meta[metaKeyword].value)
        dataset.save_as(os.path.join(targetFolder, fileName), enforce_file_format=True)
    return targetFolder


def syntheticSeries(targetFolder, array, spacing=(2.0, 1.0, 1.0), origin=(-20.0, -30.0, 40.0),
                    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), seed="synthetic", patientId="AISEG-TEST"):
    """A small CT series (one CT Image Storage file per slice, uncompressed int16) of a KJI array with real UIDs
    (derived from seed: the same on every call). spacing: (slice, row, column) in mm; origin: the first voxel in LPS
    mm; orientation: ImageOrientationPatient (row direction, column direction). Returns targetFolder."""
    import datetime

    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    os.makedirs(targetFolder, exist_ok=True)
    array = np.asarray(array, np.int16)
    rowDirection, columnDirection = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(rowDirection, columnDirection)
    study, series, frame = (generate_uid(entropy_srcs=[seed, part]) for part in ("study", "series", "frame"))
    today = datetime.date.today().strftime("%Y%m%d")
    for k, pixels in enumerate(array):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[seed, "instance", str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset = Dataset()
        dataset.file_meta = meta
        dataset.SOPClassUID, dataset.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        dataset.PatientName, dataset.PatientID, dataset.PatientBirthDate, dataset.PatientSex = "Test^Synthetic", \
            patientId, "", "O"
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.FrameOfReferenceUID = study, series, frame
        dataset.StudyDate, dataset.StudyTime, dataset.StudyID, dataset.AccessionNumber = today, "120000", "1", ""
        dataset.ReferringPhysicianName, dataset.Modality, dataset.SeriesNumber, dataset.InstanceNumber = \
            "", "CT", 1, k + 1
        dataset.Manufacturer, dataset.PositionReferenceIndicator = "AISegmentation tests", ""
        dataset.ImageOrientationPatient = [f"{v:g}" for v in orientation]
        dataset.ImagePositionPatient = [f"{v:g}" for v in np.asarray(origin, float) + k * spacing[0] * normal]
        dataset.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[2]:g}"]
        dataset.SliceThickness = f"{spacing[0]:g}"
        dataset.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
        dataset.Rows, dataset.Columns = pixels.shape
        dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 16, 15, 1
        dataset.RescaleIntercept, dataset.RescaleSlope, dataset.RescaleType = "0", "1", "HU"
        dataset.PixelData = np.ascontiguousarray(pixels).tobytes()
        dataset.save_as(os.path.join(targetFolder, f"slice{k:04d}.dcm"), enforce_file_format=True)
    return targetFolder
