"""Writing an AI job's result into a segmentation: validated label map, one segment per label, ONE undo state,
segment tags (label value, source, terminology) and provenance attributes on the segmentation node.

The label map is validated in full before anything changes; it is written with the segment editor logic's
ModifySegmentByLabelmap (mask and overwrite modes apply); on any error the scene is left as it was.
"""

import datetime
import json
import logging

import numpy as np
import slicer

from ... import Segments
from ...Boxes import boundingBox, boxSlices
from ...Geometry import croppedLabelmap, orientedImageFromArray
from . import ResultImport

ATTRIBUTE_PREFIX = "AISegmentation."
LABEL_VALUE_TAG = "AISegmentation.labelValue"
SOURCE_TAG = "AISegmentation.source"


class ResultWriter:
    """Writes one job's result; scene, segmentEditor and createSegmentation(volumeNode, name) are the AI logic's."""

    def __init__(self, scene, segmentEditor, createSegmentation):
        self.scene = scene
        self.segmentEditor = segmentEditor
        self.createSegmentation = createSegmentation

    def importResult(self, job, context):
        """Validate the child's label map fully, then write it (one undo state); the scene is unchanged on error."""
        reference, segmentationNode = context["reference"], context["segmentationNode"]
        for node, what in ((reference, "input volume"), (segmentationNode, "segmentation")):
            if node is not None and not self.scene.IsNodePresent(node):
                raise RuntimeError(f"The {what} was removed from the scene while the AI job ran")
        names = ResultImport.readLabelNames(context["request"]["outputLabels"])
        array = ResultImport.readLabelmap(context["request"]["outputLabelmap"], reference)
        present = ResultImport.presentLabels(array, names)
        backend, prepared = context["backend"], context["prepared"]
        created = segmentationNode is None
        if created:
            segmentationNode = self.createSegmentation(reference, backend.segmentationName(reference.GetName()))
        try:
            written = self._writeLabels(segmentationNode, reference, array, present, names, f"{backend.title}: "
                                        f"{prepared.description}")
            self._setProvenance(segmentationNode, job, context)
            job.extraNodes = backend.importExtras(self.scene, segmentationNode, reference, written, context)
        except BaseException:
            if created:
                self.scene.RemoveNode(segmentationNode)
            raise
        if not present:
            job.messages.append(f"{backend.title} found no structure in '{reference.GetName()}'")
        logging.info("%s: %d segment(s) written into '%s' in %.1f s", backend.title, len(present),
                     segmentationNode.GetName(), job.seconds)
        return segmentationNode

    def _writeLabels(self, segmentationNode, volumeNode, array, present, names, source):
        """One segment per label value (existing segments of the same name are replaced), one undo state.

        The undo state is saved before new segments are added, so one Undo removes them again; the labelmaps are
        written with the segment editor logic's ModifySegmentByLabelmap (mask and overwrite modes apply).
        """
        editor = self.segmentEditor
        aligned = editor.bind(segmentationNode, volumeNode)
        segmentation = segmentationNode.GetSegmentation()
        labelmaps = {}
        editor.saveStateForUndo(segmentationNode)
        try:
            for value in present:
                entry = names[value]
                segmentId = segmentation.GetSegmentIdBySegmentName(entry["name"])
                mask = array == value
                if segmentId:
                    labelmaps[segmentId] = orientedImageFromArray(mask.astype(np.uint8), aligned)
                else:
                    color = [channel / 255.0 for channel in entry["color"]] if entry.get("color") else None
                    segmentId = Segments.addSegment(segmentationNode, entry["name"], color)
                    box = boundingBox(mask)
                    labelmaps[segmentId] = croppedLabelmap(aligned, box, mask[boxSlices(box)])
                _tagSegment(segmentation.GetSegment(segmentId), value, entry, source)
            editor.modifySegments(segmentationNode, volumeNode, labelmaps, "set", saveUndoState=False)
        except BaseException:
            editor.editorLogic.Undo()  # back to the state saved above: added segments go, edits are reverted
            raise
        return list(labelmaps)

    @staticmethod
    def _setProvenance(segmentationNode, job, context):
        info = (job.childResult or {}).get("info", {})
        prepared = context["prepared"]
        attributes = {"backend": context["backend"].title, "model": prepared.description,
                      "version": json.dumps(info.get("versions", {}), sort_keys=True),
                      "parameters": json.dumps(prepared.parameters, sort_keys=True),
                      "device": info.get("device", ""), "environment": context["environment"],
                      "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                      "durationSeconds": f"{job.seconds:.1f}"}
        for key, value in attributes.items():
            segmentationNode.SetAttribute(ATTRIBUTE_PREFIX + key, str(value))


def _tagSegment(segment, value, entry, source):
    segment.SetTag(LABEL_VALUE_TAG, str(value))
    segment.SetTag(SOURCE_TAG, source)
    terminology = ResultImport.terminologyEntry(entry)
    if terminology:
        segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), terminology)
