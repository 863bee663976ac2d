"""The atlas-based segmentation tool (ABAS): register each atlas (image + label map or segmentation) to the source
volume, carry its labels over, fuse the atlases (majority vote or STAPLE) and write one segment per structure with
its confidence. It runs as a job: the registration on a worker thread with progress and Cancel, the write on the
caller's thread (one undo state); a cancelled or failed run changes nothing."""

import logging
import time

import numpy as np
import SimpleITK as sitk

from ...JobRunner import JobCancelledError
from ...Geometry import orientedImageFromArray
from ...Options import Option
from ...Segments import addSegment
from ..Tool import ClassicTool
from .AtlasImages import atlasLabels, atlasPairs, volumeToImage
from .Fusion import FUSION_METHODS, fuseLabels, structureConfidence
from .LabelTransfer import transferLabels
from .Registration import DEFORMABLE_METHODS, LINEAR_TRANSFORMS, RegistrationCancelled, RegistrationOptions, \
    registerAtlas

LOG = logging.getLogger("AISegmentation.Atlas")
CONFIDENCE_TAG = "AISegmentation.atlasConfidence"


class AtlasTool(ClassicTool):
    name = "atlas"
    title = "Atlas-based segmentation"
    help = ("Register one or more atlases (an image with its label map or segmentation) to the source volume "
            "(CT to CT: first an exhaustive search along the slice axis; rigid or affine by mutual information, then "
            "deformable), carry their labels over and fuse them (majority vote or STAPLE; an atlas abstains where it "
            "does not cover the target). Each structure becomes a segment with its confidence: the mean agreement of "
            "the atlases inside it.")
    options = (
        Option("linear", "str", "affine", "the first, linear stage", choices=LINEAR_TRANSFORMS),
        Option("deformable", "str", "demons", "the deformable stage: none, B-spline (mutual information; slower) "
               "or diffeomorphic demons (same modality)", choices=DEFORMABLE_METHODS),
        Option("iterations", "int", 50, "iterations of the deformable stage", minimum=0, maximum=1000),
        Option("gridSpacing", "float", 50.0, "B-spline control-point spacing", unit="mm", minimum=5.0,
               maximum=500.0),
        Option("demonsSmoothing", "float", 4.0, "standard deviation of the demons field's smoothing: smaller "
               "follows finer deformations", unit="mm", minimum=0.5, maximum=20.0),
        Option("registrationSpacing", "float", 4.0, "the images are resampled to at least this spacing for the "
               "registration (the labels are carried onto the full grid)", unit="mm", minimum=0.5, maximum=20.0),
        Option("search", "bool", True, "search the atlas's position along the slice axis first (a target that "
               "covers only part of the atlas's body)"),
        Option("fusion", "str", "staple", "how several atlases are fused", choices=FUSION_METHODS),
        Option("labelNames", "str", "", "names of the atlases' label values ('1=liver,2=spleen' or a JSON file); "
               "segmentations bring their own names", title="Label names"),
    )
    needs = ("volumes",)
    job = True

    def compute(self, inputs, linear="affine", deformable="demons", iterations=50, gridSpacing=50.0,
                demonsSmoothing=4.0, registrationSpacing=4.0, search=True, fusion="staple", labelNames="", **ignored):
        start = time.perf_counter()
        options = RegistrationOptions(linear=linear, deformable=deformable, deformableIterations=int(iterations),
                                      gridSpacingMm=float(gridSpacing), demonsSmoothingMm=float(demonsSmoothing),
                                      registrationSpacingMm=float(registrationSpacing),
                                      search=bool(search)).validate()
        if fusion not in FUSION_METHODS:
            raise ValueError(f"fusion must be one of {', '.join(FUSION_METHODS)} (got {fusion!r})")
        target = volumeToImage(inputs.volumeNode, "target volume")
        atlases = []
        for imageNode, labelsNode in atlasPairs(inputs.volumes):
            image = volumeToImage(imageNode, "atlas image")
            atlases.append((image, *atlasLabels(imageNode, labelsNode, image, labelNames or None)))
        transferred, names = [], {}
        share = 95.0 / len(atlases)
        for index, (image, labels, atlasNames) in enumerate(atlases):
            def progress(fraction, message, index=index):
                inputs.progress(share * (index + fraction), f"Atlas {index + 1} of {len(atlases)}: {message}")
            try:
                transform = registerAtlas(target, image, options, progress, inputs.cancelled)
            except RegistrationCancelled:
                raise JobCancelledError("Atlas segmentation was cancelled; nothing was changed") from None
            transferred.append(transferLabels(labels, transform, target))
            for value, name in atlasNames.items():
                names.setdefault(value, name)
        inputs.progress(96.0, f"Fusing {len(transferred)} atlas(es) ({fusion})")
        fused = fuseLabels(transferred, fusion)
        confidence = structureConfidence(transferred, fused)
        LOG.info("Atlas segmentation: %d atlas(es), %d structures in %.1f s", len(atlases), len(confidence),
                 time.perf_counter() - start)
        return {"labels": sitk.GetArrayFromImage(fused), "names": names, "confidence": confidence,
                "atlases": len(atlases), "seconds": time.perf_counter() - start}

    def write(self, inputs, computed):
        """One segment per fused structure (found by name, or added), its confidence as a segment tag; one undo
        state. Returns {"rows": [{segment, labelValue, confidence, voxels}], "atlases", "seconds"}."""
        segmentationNode, volumeNode, editor = inputs.segmentationNode, inputs.volumeNode, inputs.segmentEditor
        sourceImage = editor.bind(segmentationNode, volumeNode)
        labels = computed["labels"]
        if labels.shape != tuple(sourceImage.GetDimensions()[::-1]):
            raise ValueError("The source volume changed while the atlases were registered; nothing was changed")
        editor.saveStateForUndo(segmentationNode)
        segmentation = segmentationNode.GetSegmentation()
        labelmaps, rows = {}, []
        for value, confidence in sorted(computed["confidence"].items()):
            name = computed["names"].get(value, f"Label {value}")
            segmentId = segmentation.GetSegmentIdBySegmentName(name) or addSegment(segmentationNode, name)
            segmentation.GetSegment(segmentId).SetTag(CONFIDENCE_TAG, f"{confidence:.4f}")
            mask = labels == value
            labelmaps[segmentId] = orientedImageFromArray(mask.astype(np.uint8), sourceImage)
            rows.append({"segment": name, "labelValue": value, "confidence": round(confidence, 4),
                         "voxels": int(mask.sum())})
        editor.modifySegments(segmentationNode, volumeNode, labelmaps, "set", saveUndoState=False)
        return {"rows": rows, "atlases": computed["atlases"], "seconds": round(computed["seconds"], 2)}
