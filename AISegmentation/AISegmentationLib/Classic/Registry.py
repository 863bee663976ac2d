"""The registry of classic tools: adding a tool = its folder ``Classic/<Tool>/`` plus one line in TOOLS (and its
files in AISegmentation/CMakeLists.txt). The panel's Classic section, ``aisegmentation <tool>``, the web page's Classic
panel and ``Logic.runClassicTool`` are built from the declarations; nothing else names a tool.

How to add a tool (see Tool.py, and Threshold/ThresholdTool.py or GrowFromSeeds/GrowFromSeedsTool.py as examples):

1. ``Classic/<Tool>/<Tool>Tool.py``: a subclass of ``Tool.ClassicTool`` with these class attributes
   - ``name``: the key, lower-case words joined by "-" ("watershed"): ``logic.runClassicTool("watershed", ...)``
     and ``aisegmentation watershed``;
   - ``title``, ``help``: shown by the panel, the CLI's --help and the web page;
   - ``options``: a tuple of ``AISegmentationLib.Options.Option`` (the backends' declaration: name, type, default,
     help, choices, unit, minimum, maximum, flag...): the Logic validates them (a ValueError naming the option) and
     every front builds one editor / one argument per option;
   - ``needs``: what the run needs besides the source volume and the segmentation, items of ``Tool.NEEDS``:
     "segment" (the target segment), "seedSegments" (two or more segments: the markers / seeds), "seedPoint" or
     "seedPoints" (RAS points inside the volume), "volumes" (several volumes, e.g. atlas images);
   - ``actions`` (optional): names of methods ``action(inputs, **options) -> {option: new value}`` that the fronts
     offer as buttons (Threshold's "autoRange" fills minimum and maximum);
   - ``preview = True`` (optional): the tool defines ``startPreview(inputs, **options)`` returning a session with
     ``update()``, ``apply()`` (one undo state), ``cancel()``, ``seedSegmentIds``, ``previewArray(segmentId)``,
     ``segmentationNode``, ``sourceVolumeNode`` (GrowFromSeeds.GrowFromSeedsSession is one); the Logic's
     ``startClassicPreview`` starts it and ``showClassicPreview`` shows it as a "<segmentation> preview" node;
   - ``job = True`` (optional, for long runs such as a registration): the tool defines ``compute(inputs, **options)``
     (a worker thread: no scene writes; report with ``inputs.progress(percent, message)``, stop with
     ``JobCancelledError`` when ``inputs.cancelled()``) and ``write(inputs, computed)`` (the caller's thread);
     ``logic.startClassicTool(name, ...)`` returns a ``ToolJob.ClassicToolJob`` (progress, Cancel, wait()) and
     ``runClassicTool`` runs it to the end.
   and the method ``run(inputs, **options)`` (not needed for a job tool): check the inputs (a ValueError with a clear
   message, nothing written), compute, then write only through ``inputs.segmentEditor.modifySegment(segmentation,
   segmentId, volume, labelmap, mode)`` or ``modifySegments(...)`` (masking, overwrite, one undo state).
   ``inputs`` is a ``Tool.ToolInputs``: segmentEditor, scene, volumeNode, segmentationNode, segmentId,
   seedSegmentIds, seedPoints, volumes, progress, cancelled.
2. The tool's own computing modules beside it in its folder (e.g. ``Classic/<Tool>/<Tool>.py``: filters on images or
   arrays, no MRML where possible).
3. One line in TOOLS below: ``"<Folder>.<module>.<class>"``.
4. Its .py files in AISegmentation/CMakeLists.txt (MODULE_PYTHON_SCRIPTS); its tests in Testing/Python/.
"""

import importlib

TOOLS = (
    "Threshold.ThresholdTool.ThresholdTool",
    "LevelTracing.LevelTracingTool.LevelTracingTool",
    "GrowFromSeeds.GrowFromSeedsTool.GrowFromSeedsTool",
    "Islands.IslandsTool.IslandsTool",
    "Watershed.WatershedTool.WatershedTool",
    "ActiveContour.ActiveContourTool.ActiveContourTool",
    "Atlas.AtlasTool.AtlasTool",
)

_listed = None  # name -> tool of TOOLS, once imported


def allTools():
    """{name: tool instance}, in registry order (the fronts' order)."""
    global _listed
    if _listed is None:
        tools = {}
        for entry in TOOLS:
            moduleName, className = entry.rsplit(".", 1)
            tool = getattr(importlib.import_module(f"{__package__}.{moduleName}"), className)()
            tools[tool.name] = tool
        _listed = tools
    return dict(_listed)


def toolNames():
    return list(allTools())


def getTool(name):
    tools = allTools()
    if name not in tools:
        raise ValueError(f"Unknown classic tool '{name}'; choose one of: {', '.join(tools)}")
    return tools[name]
