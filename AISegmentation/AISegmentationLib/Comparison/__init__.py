"""Comparing segmentations: the numeric engine (SegmentComparison.py: numpy/scipy/torch only, no MRML, so it also runs
on a machine without Slicer) and its MRML side (SegmentComparisonMRML.py for segmentation nodes,
SegmentComparisonLayers.py for their shared labelmap layers, LabelmapComparison.py for label-map files).

This ``__init__`` imports nothing, so that ``from AISegmentationLib.Comparison import SegmentComparison`` needs no
Slicer."""
