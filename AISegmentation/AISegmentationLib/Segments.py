"""Creating segmentations and segments with names, distinct colours and tags."""

import colorsys


def distinctColor(index):
    """A colour (r, g, b in 0..1) that differs clearly from its neighbours in the sequence (golden-ratio hues)."""
    hue = (index * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.65, 0.95)


def createSegmentation(scene, volumeNode, name):
    """New segmentation node with the geometry of volumeNode."""
    segmentationNode = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentationNode.CreateDefaultDisplayNodes()
    segmentationNode.SetReferenceImageGeometryParameterFromVolumeNode(volumeNode)
    return segmentationNode


def addSegment(segmentationNode, name, color=None, colorIndex=None):
    """Add an empty segment and return its ID. The colour is given, or distinct by index."""
    if not name or not str(name).strip():
        raise ValueError("A segment needs a name")
    segmentation = segmentationNode.GetSegmentation()
    if colorIndex is None:
        colorIndex = segmentation.GetNumberOfSegments() + 1
    rgb = color if color is not None else distinctColor(colorIndex)
    return segmentation.AddEmptySegment("", str(name), list(rgb))


def segmentIdByName(segmentationNode, name):
    """ID of the segment with this name; ValueError listing the names when there is none."""
    segmentation = segmentationNode.GetSegmentation()
    segmentId = segmentation.GetSegmentIdBySegmentName(name)
    if not segmentId:
        names = [segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())]
        raise ValueError(f"Segmentation '{segmentationNode.GetName()}' has no segment named '{name}' "
                         f"(segments: {', '.join(names) or 'none'})")
    return segmentId


def segmentTag(segment, key):
    """Value of a segment tag, or None when the segment has no such tag."""
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(key, value) else None
