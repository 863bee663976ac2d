#!/usr/bin/env python
"""The README's comparison pictures, made from the example CT: TotalSegmentator's full-resolution segmentation
(reference) against its fast model's (compared), both from the project's sample data.

  Screenshots/error_map.png      true positive / false positive / false negative voxels of every structure
  Screenshots/distance_map.png   the compared liver surface coloured by its signed distance to the reference

Usage: comparison_pictures.py [--output FOLDER]   (default: the repository's Screenshots/)
"""

import argparse
import logging
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "AISegmentation"))

LIVER = "Label 5"


def makePictures(output):
    from AISegmentationLib.Pictures.ComparisonPictures import renderDistanceMap, renderErrorMap
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.SampleData import fetchSampleFile

    logic = AISegmentationLogic()
    volume = logic.loadVolume(fetchSampleFile("example_ct_sm.nii.gz"))
    reference = logic.importLabelmap(fetchSampleFile("example_seg.nii.gz"), referenceVolumeNode=volume)
    compared = logic.importLabelmap(fetchSampleFile("example_seg_fast.nii.gz"), referenceVolumeNode=volume)
    os.makedirs(output, exist_ok=True)
    paths = [renderErrorMap(volume, logic.comparisonErrorMap(reference, compared),
                            os.path.join(output, "error_map.png"))]
    models = dict(logic.comparisonDistanceMap(reference, compared))
    paths.append(renderDistanceMap("liver", models[LIVER], os.path.join(output, "distance_map.png")))
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=os.path.join(REPO, "Screenshots"), help="folder of the PNG files")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for path in makePictures(args.output):
        print(path)


if __name__ == "__main__":
    main()
