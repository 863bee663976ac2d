"""Every frame of a sequence (4D) through any backend: one segmentation per frame, kept as a segmentation sequence,
and a table of the structures' volumes per frame. No Qt; the frames run one after the other in the calling thread.

    segmentations, table = logic.runBackendOnSequence("nnunet", sequenceNode, modelFolders=[...], device="cpu")

The input is a Slicer sequence node of scalar volumes (its frames in index order) or a list of volume nodes. Each
frame runs as an ordinary backend job (its own child process, progress, undo-free import into a fresh segmentation)
on a temporary copy of the frame in the scene; the result goes into the output sequence under the frame's index
value, and the temporary nodes are removed. progressCallback(percent, message) sees the frame; cancelEvent cancels
the running frame (its process tree ends) and no further frame starts.
"""

import numpy as np
import vtk

from .JobRunner import JobCancelledError


def sequenceFrames(sequence):
    """[(index value, volume node)] of a sequence node of volumes or of a list of volume nodes; ValueError else."""
    if isinstance(sequence, (list, tuple)):
        frames = [(str(index), node) for index, node in enumerate(sequence)]
    elif hasattr(sequence, "IsA") and sequence.IsA("vtkMRMLSequenceNode"):
        frames = [(sequence.GetNthIndexValue(index), sequence.GetNthDataNode(index))
                  for index in range(sequence.GetNumberOfDataNodes())]
    else:
        raise ValueError("A sequence is a sequence node of volumes or a list of volume nodes")
    if not frames:
        raise ValueError("The sequence has no frames")
    for value, node in frames:
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode") or node.GetImageData() is None:
            raise ValueError(f"Frame {value} of the sequence is not a volume with an image")
    return frames


class SequenceRun:
    """Runs a backend frame by frame; see the module docstring."""

    def __init__(self, scene, startBackend, segmentStatistics):
        """scene(): the MRML scene; startBackend(name, volume, **options) -> job; segmentStatistics(segmentation,
        volume) -> rows with "segment" and "volumeMl"."""
        self._scene = scene
        self._startBackend = startBackend
        self._statistics = segmentStatistics

    def run(self, name, sequence, progressCallback=None, cancelEvent=None, outputName=None, **options):
        frames = sequenceFrames(sequence)
        scene = self._scene()
        output = scene.AddNewNodeByClass("vtkMRMLSequenceNode", outputName or f"{name} segmentations")
        output.SetIndexName(getattr(sequence, "GetIndexName", lambda: "frame")() or "frame")
        rows = []
        try:
            for number, (value, frame) in enumerate(frames):
                if cancelEvent is not None and cancelEvent.is_set():
                    raise JobCancelledError(f"{name} on the sequence was cancelled before frame {value}")
                volume = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"frame {value}")
                volume.Copy(frame)
                volume.SetName(f"frame {value}")
                segmentation = None
                try:
                    report = _frameProgress(progressCallback, number, len(frames), value)
                    segmentation = self._startBackend(name, volume, **options).wait(progressCallback=report,
                                                                                   cancelEvent=cancelEvent)
                    volumes = {row["segment"]: row["volumeMl"] for row in self._statistics(segmentation, volume)}
                    rows.append((value, volumes))
                    output.SetDataNodeAtValue(segmentation, value)
                finally:
                    for node in (segmentation, volume):
                        if node is not None:
                            scene.RemoveNode(node)
        except BaseException:
            scene.RemoveNode(output)
            raise
        table = _volumeTable(scene, rows, f"{output.GetName()} volumes (mL)", output.GetIndexName())
        return output, table


def _frameProgress(callback, number, count, value):
    if callback is None:
        return None
    return lambda percent, message: callback(100.0 * (number + percent / 100.0) / count,
                                             f"Frame {value} ({number + 1}/{count}): {message}")


def _volumeTable(scene, rows, name, indexName):
    """A table node: one row per frame, one column per structure (mL; 0 where a frame has none of it)."""
    structures = list(dict.fromkeys(structure for _, volumes in rows for structure in volumes))
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    columns = {indexName: np.array([value for value, _ in rows], dtype=object)}
    columns.update({structure: np.array([volumes.get(structure, 0.0) for _, volumes in rows], float)
                    for structure in structures})
    for column, values in columns.items():
        array = vtk.vtkStringArray() if values.dtype == object else vtk.vtkDoubleArray()
        array.SetName(column)
        for item in values:
            array.InsertNextValue(str(item) if values.dtype == object else float(item))
        table.AddColumn(array)
    return table
