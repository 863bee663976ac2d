"""Files beside a saved segmentation for what an AI run gave besides its segments (Backend.importExtras): the
statistics table as CSV (through CsvOutput: no cell runs as a spreadsheet formula) and probability volumes as
NIfTI. Used by the command line; in Slicer the nodes themselves are the result."""

import os
import re

from ...CsvOutput import writeDictRows
from ... import VolumeIO

STATISTICS_REFERENCE = "AISegmentation.statistics"
PROBABILITIES_REFERENCE = "AISegmentation.probabilities"
SEGMENTATION_SUFFIX = re.compile(r"(\.seg)?\.(nrrd|nii\.gz|nii|nhdr|dcm)$", re.IGNORECASE)


def tableRows(tableNode):
    """A table node's rows as dicts (numeric columns as numbers)."""
    table = tableNode.GetTable()
    columns = [table.GetColumn(index) for index in range(table.GetNumberOfColumns())]
    return [{column.GetName(): column.GetValue(row) for column in columns} for row in range(table.GetNumberOfRows())]


def _safeName(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "class"


def saveExtras(segmentationNode, outputPath):
    """Write the extras the segmentation node references beside outputPath; returns the paths written."""
    stem = SEGMENTATION_SUFFIX.sub("", os.fspath(outputPath))
    paths = []
    table = segmentationNode.GetNodeReference(STATISTICS_REFERENCE)
    if table is not None:
        paths.append(writeDictRows(f"{stem}.statistics.csv", tableRows(table)))
    for index in range(segmentationNode.GetNumberOfNodeReferences(PROBABILITIES_REFERENCE)):
        volume = segmentationNode.GetNthNodeReference(PROBABILITIES_REFERENCE, index)
        name = volume.GetAttribute("AISegmentation.probabilityOf") or str(index)
        paths.append(VolumeIO.saveVolume(volume, f"{stem}.probabilities.{_safeName(name)}.nii.gz"))
    return paths
