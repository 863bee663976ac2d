"""PNG pictures of a comparison's maps, drawn without a display: the error map on three orthogonal slices of the
volume (Overview.renderOverview: true positives green, false positives red, false negatives blue) and a
surface-distance map as the compared surface coloured by its signed distance to the reference (matplotlib's
object API on an Agg canvas, blue inside / red outside the reference)."""

import numpy as np
import slicer
from vtk.util import numpy_support

from ..AtomicWrite import atomicOutput
from ..Comparison import ComparisonMaps
from .Overview import renderOverview


def renderErrorMap(volumeNode, errorMapNode, path, window=(-160, 240)):
    """Three orthogonal slices of the volume with every error-map segment in its colour; returns the path."""
    segmentation = errorMapNode.GetSegmentation()
    masks = []
    for segmentId in segmentation.GetSegmentIDs():
        mask = slicer.util.arrayFromSegmentBinaryLabelmap(errorMapNode, segmentId, volumeNode)
        if mask is not None:
            masks.append((mask, segmentation.GetSegment(segmentId).GetColor()))
    return renderOverview(slicer.util.arrayFromVolume(volumeNode), volumeNode.GetSpacing()[::-1], masks, path,
                          window=window, alpha=0.6)


def renderDistanceMap(structure, model, path, limit=None):
    """The model's surface (a distance map of ComparisonMaps) seen from the front (anterior) and from the right,
    each triangle coloured by the mean signed distance of its points, with a colour bar; returns the path."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    surface = model.GetPolyData()
    points = numpy_support.vtk_to_numpy(surface.GetPoints().GetData())
    triangles = numpy_support.vtk_to_numpy(surface.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    distances = numpy_support.vtk_to_numpy(surface.GetPointData().GetArray(ComparisonMaps.DISTANCE_ARRAY))
    limit = limit or max(float(np.abs(distances).max()), 1e-3)
    norm, colormap = Normalize(-limit, limit), colormaps["coolwarm"]
    figure = Figure(figsize=(9, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for index, (elevation, azimuth, view) in enumerate(((0, -90, "anterior"), (0, 0, "right"))):
        axes = figure.add_subplot(1, 2, index + 1, projection="3d")
        collection = axes.plot_trisurf(points[:, 0], points[:, 1], points[:, 2], triangles=triangles,
                                       linewidth=0, antialiased=False, shade=False)
        collection.set_facecolor(colormap(norm(distances[triangles].mean(axis=1))))
        axes.view_init(elev=elevation, azim=azimuth)
        axes.set_box_aspect(np.ptp(points, axis=0))
        axes.set_axis_off()
        axes.set_title(f"{structure}, {view} view")
    bar = figure.colorbar(_mappable(norm, colormap), ax=figure.axes, shrink=0.8)
    bar.set_label("signed distance to the reference (mm)\n< 0 inside it, > 0 outside it")
    with atomicOutput(path) as temporary:
        figure.savefig(temporary, format="png")
    return path


def _mappable(norm, colormap):
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=colormap)
