"""What a sequence run leaves: the table of the structures' volumes per frame (a table node in the scene; a CSV file
and a plot over time on disk) and the browser node that plays the input and the segmentation sequences together."""

import logging

import slicer
import vtk

from ...AtomicWrite import atomicOutput
from ...CsvOutput import writeCsv

BROWSER_CLASS = "vtkMRMLSequenceBrowserNode"


def structureNames(rows):
    """The structures of [(index value, {structure: mL})] in order of first appearance."""
    return list(dict.fromkeys(structure for _, volumes in rows for structure in volumes))


def volumeTable(scene, rows, name, indexName):
    """A table node: one row per frame, one column per structure (mL; 0 where a frame has none of it)."""
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    index = vtk.vtkStringArray()
    index.SetName(indexName)
    for value, _ in rows:
        index.InsertNextValue(str(value))
    table.AddColumn(index)
    for structure in structureNames(rows):
        column = vtk.vtkDoubleArray()
        column.SetName(structure)
        for _, volumes in rows:
            column.InsertNextValue(float(volumes.get(structure, 0.0)))
        table.AddColumn(column)
    return table


def writeVolumeCsv(path, rows, indexName, files=None):
    """CSV of the volumes per frame (one row per frame: index value, [file,] one column per structure in mL)."""
    structures = structureNames(rows)
    header = [indexName, *(["file"] if files else []), *[f"{structure} (mL)" for structure in structures]]
    lines = [[value, *([files[number]] if files else []), *[volumes.get(structure, 0.0) for structure in structures]]
             for number, (value, volumes) in enumerate(rows)]
    writeCsv(path, header, lines)
    return path


def plotVolumes(path, rows, indexName, title="Structure volumes per frame"):
    """PNG of each structure's volume (mL) over the frames (matplotlib on an Agg canvas: no display, pyplot's backend
    untouched); the frames' index values on the x axis when they are numbers, their order otherwise."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = [value for value, _ in rows]
    try:
        positions, labels = [float(value) for value in values], None
    except ValueError:
        positions, labels = list(range(len(values))), values
    figure = Figure(figsize=(8.0, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for structure in structureNames(rows):
        axes.plot(positions, [volumes.get(structure, 0.0) for _, volumes in rows], marker="o", label=structure)
    if labels is not None:
        axes.set_xticks(positions, labels, rotation=45 if len(labels) > 8 else 0)
    axes.set_xlabel(indexName)
    axes.set_ylabel("volume (mL)")
    axes.set_title(f"{title} ({len(rows)} frames)")
    axes.grid(alpha=0.3)
    if len(structureNames(rows)) <= 20:
        axes.legend(fontsize="small", loc="best")
    with atomicOutput(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def browserFor(scene, inputSequence, output):
    """The browser node that plays the segmentation sequence `output`: the browser already playing `inputSequence`
    (its frames then show with their segmentation), else a new one with both (or `output` alone for a list of
    volumes). Proxy nodes are made by the Sequences module's logic when the scene has one."""
    if not scene.IsNodeClassRegistered(BROWSER_CLASS):
        scene.RegisterNodeClass(getattr(slicer, BROWSER_CLASS)())  # a headless scene without the Sequences logic
    browser = None
    if inputSequence is not None and inputSequence.GetScene() is scene:
        for number in range(scene.GetNumberOfNodesByClass(BROWSER_CLASS)):
            candidate = scene.GetNthNodeByClass(number, BROWSER_CLASS)
            if candidate.IsSynchronizedSequenceNode(inputSequence.GetID(), True):
                browser = candidate
                break
    if browser is None:
        browser = scene.AddNewNodeByClass(BROWSER_CLASS, f"{output.GetName()} browser")
        master = inputSequence if inputSequence is not None and inputSequence.GetScene() is scene else output
        browser.SetAndObserveMasterSequenceNodeID(master.GetID())
    if not browser.IsSynchronizedSequenceNode(output.GetID(), True):
        browser.AddSynchronizedSequenceNode(output.GetID())
    browser.SetSaveChanges(output, False)
    logging.info("Sequence browser '%s' plays '%s'", browser.GetName(), output.GetName())
    return browser


def frameVolumes(statisticsRows):
    """{structure: mL} of segmentStatistics rows."""
    return {row["segment"]: float(row["volumeMl"]) for row in statisticsRows}
