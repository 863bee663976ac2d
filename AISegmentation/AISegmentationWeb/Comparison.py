"""Compare panel: all segment pairs of two segmentations (every segment of either side a row) through the Logic's
comparison engine, the shown metrics of Comparison/Metrics.py in the table on the page, and its CSV download (the
Logic's own CSV writer, every metric)."""

import os
import tempfile

from trame.widgets import html
from trame.widgets import vuetify3 as v3

from AISegmentationLib.Comparison.Metrics import shownMetrics

from .Layout import actionButton, dataAttributes


class ComparisonPanel:
    title, key = "Compare", "compare"

    def __init__(self, page):
        self.page = page
        self.rows = []
        state, ctrl = page.state, page.ctrl
        state.compareReference, state.compareCompared, state.comparisonRows = None, None, []
        state.comparisonHeaders = [{"title": "Pair", "key": "pair"}] + [
            {"title": metric.columnTitle(), "key": metric.key} for metric in shownMetrics()] + [
            {"title": "Note", "key": "note"}]
        ctrl.compare = page.action("compare")(self.compare)
        page.server.trigger("downloadComparison")(self.csvText)

    def buildUi(self):
        v3.VSelect(label="Reference", items=("segmentations",), v_model=("compareReference",), density="compact",
                   hide_details=True, id="compare-reference")
        v3.VSelect(label="Compared", items=("segmentations",), v_model=("compareCompared",), density="compact",
                   hide_details=True, id="compare-compared")
        actionButton("Compare all pairs", self.page.ctrl.compare, "compare-run")
        actionButton("Download CSV", "utils.download('comparison.csv', trigger('downloadComparison'), 'text/csv')",
                     "compare-csv", disabled=("!comparisonRows.length",))
        with v3.VTable(density="compact", id="comparison-table"):
            with html.Thead(), html.Tr():
                html.Th("{{ header.title }}", v_for="header in comparisonHeaders", key="header.key")
            with html.Tbody():
                with html.Tr(v_for="row in comparisonRows", key="row.pair", data_pair=("row.pair",),
                             **dataAttributes("data_pair")):
                    html.Td("{{ row[header.key] }}", v_for="header in comparisonHeaders", key="header.key",
                            data_metric=("header.key",), **dataAttributes("data_metric"))

    def compare(self):
        state = self.page.state
        reference, compared = self.page.node(state.compareReference), self.page.node(state.compareCompared)
        self.rows, _ = self.page.logic.compareSegmentations(reference, compared)
        state.comparisonRows = [self._rowView(row) for row in self.rows]

    @staticmethod
    def _rowView(row):
        result = row["result"]
        view = {"pair": f"{row['referenceSegment'] or '-'} / {row['comparedSegment'] or '-'}"}
        for metric in shownMetrics():
            view[metric.key] = metric.format(getattr(result, metric.key))
        view["note"] = result.note
        return view

    def csvText(self):
        if not self.rows:
            raise ValueError("Compare two segmentations first")
        with tempfile.TemporaryDirectory(prefix="aisegmentation-csv-") as folder:
            path = self.page.logic.saveComparisonCsv(self.rows, os.path.join(folder, "comparison.csv"))
            with open(path, encoding="utf-8") as file:
                return file.read()
