"""DICOM SEG / RTSTRUCT in and out, and the DICOMweb (PACS) client."""
