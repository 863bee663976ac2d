"""The demo: classic tools on TotalSegmentator's public example CT.

Segments the liver by grow from seeds (seed points shipped in Resources/Demo as Slicer markups files), keeps its
largest island, then bone by threshold outside the liver (masking), removes small bone islands, and writes a
.seg.nrrd, a label-map NIfTI, a PNG overview and a CSV table of segment volumes. The liver is compared with
TotalSegmentator's own liver (label 5 of example_seg_fast_force_split.nii.gz).
"""

import logging
import os
import time

import slicer

from ..Pictures import Overview
from .. import SampleData
from ..Comparison import SegmentComparison
from ..AtomicWrite import prepareOutputFolder
from ..CsvOutput import writeDictRows

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "Resources",
                        "Demo")
LIVER_SEEDS = os.path.join(DEMO_DIR, "liverSeeds.mrk.json")
OTHER_SEEDS = os.path.join(DEMO_DIR, "otherSeeds.mrk.json")
REFERENCE_LIVER_LABEL = 5
BONE_RANGE_HU = (200.0, 3071.0)
BONE_MINIMUM_ISLAND_VOXELS = 100
SEED_RADIUS_MM = 6.0


def runDemo(logic, outputDir):
    """Run the demo; returns a dict with the output paths, the segment table, the liver Dice and timings."""
    prepareOutputFolder(os.path.join(outputDir, "demo.seg.nrrd"))  # a clear error before any work
    ctPath = SampleData.fetchSampleFile("example_ct.nii.gz")
    ct = logic.loadVolume(ctPath, "example_ct")
    segmentation = logic.createSegmentation(ct, "AISegmentation demo")
    liver = logic.addSegment(segmentation, "liver", (0.86, 0.55, 0.40))
    other = logic.addSegment(segmentation, "other", (0.45, 0.45, 0.75))
    for segmentId, seedsPath in ((liver, LIVER_SEEDS), (other, OTHER_SEEDS)):
        logic.paintSeeds(ct, segmentation, segmentId, logic.loadMarkupsPoints(seedsPath), SEED_RADIUS_MM)

    start = time.perf_counter()
    session = logic.growFromSeeds(ct, segmentation, [liver, other], seedLocalityFactor=0.0)
    session.apply()
    growSeconds = time.perf_counter() - start
    logic.keepLargestIsland(ct, segmentation, liver)
    segmentation.GetSegmentation().RemoveSegment(other)

    bone = logic.addSegment(segmentation, "bone", (0.95, 0.92, 0.80))
    previousMasking = logic.masking()
    logic.setMasking(maskMode="outsideAllSegments")
    try:
        logic.threshold(ct, segmentation, bone, *BONE_RANGE_HU)
    finally:
        logic.setMasking(**previousMasking)
    logic.removeSmallIslands(ct, segmentation, bone, BONE_MINIMUM_ISLAND_VOXELS)

    referencePath = SampleData.fetchSampleFile("example_seg_fast_force_split.nii.gz")
    reference = logic.loadVolume(referencePath, "TotalSegmentator reference")
    referenceLiver = slicer.util.arrayFromVolume(reference) == REFERENCE_LIVER_LABEL
    logic.scene.RemoveNode(reference)
    liverComparison = SegmentComparison.compareMasks(referenceLiver, logic.segmentArray(segmentation, liver, ct),
                                                     ct.GetSpacing()[::-1], device="cpu")

    outputs = {
        "segmentation": logic.saveSegmentation(segmentation, os.path.join(outputDir, "demo.seg.nrrd")),
        "labelmap": logic.exportLabelmap(segmentation, ct, os.path.join(outputDir, "demo_labels.nii.gz"))[0],
        "overview": Overview.segmentationOverview(logic, ct, segmentation,
                                                  os.path.join(outputDir, "demo_overview.png")),
    }
    table = logic.segmentStatistics(segmentation, ct)
    outputs["volumes"] = writeTable(table, os.path.join(outputDir, "demo_volumes.csv"))
    logging.info("Demo finished: liver Dice %.3f, grow from seeds %.2f s", liverComparison.dice, growSeconds)
    return {"outputs": outputs, "table": table, "liverDice": liverComparison.dice,
            "liverComparison": liverComparison, "growFromSeedsSeconds": growSeconds,
            "volumeNode": ct, "segmentationNode": segmentation}


def writeTable(rows, path):
    """Write rows (dicts with the same keys) as CSV, atomically; returns the path."""
    return writeDictRows(path, rows)
