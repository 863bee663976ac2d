"""The page's layout: the slice views (trame-slicer's remote-rendered views) and a side panel per area."""

from trame.ui.vuetify3 import SinglePageWithDrawerLayout
from trame.widgets import html
from trame.widgets import vuetify3 as v3

DRAWER_WIDTH = 430


def viewLayout():
    """Axial view (large) beside coronal over sagittal. No 3D view: with trame-slicer 2.0 the 3D volume rendering
    disappears after a paint stroke, and the slice views are what every tool works on."""
    from trame_slicer.views import Layout, LayoutDirection, ViewLayoutDefinition

    return Layout(LayoutDirection.Horizontal, [
        ViewLayoutDefinition.axial_view(),
        Layout(LayoutDirection.Vertical, [ViewLayoutDefinition.coronal_view(), ViewLayoutDefinition.sagittal_view()]),
    ], flex_sizes=["2", "1"])


def section(title, identifier):
    """An expansion panel of the side panel (open by default)."""
    panel = v3.VExpansionPanel(value=identifier, title=title, id=f"section-{identifier}")
    return panel


def dataAttributes(*names):
    """Keyword arguments that let a trame element carry data-* attributes (data_x=... becomes data-x)."""
    return {"__properties": [(name, name.replace("_", "-")) for name in names]}


def actionButton(label, click, identifier, **kwargs):
    return v3.VBtn(label, click=click, id=identifier, size="small", variant="tonal", classes="ma-1", **kwargs)


def buildPage(page):
    """The whole page: status bar, side panel (each panel's controls), the views."""
    with SinglePageWithDrawerLayout(page.server, theme="dark") as layout:
        layout.title.set_text("AISegmentation")
        layout.drawer.width = DRAWER_WIDTH
        with layout.toolbar:
            v3.VSpacer()
            html.Span("{{ lastAction }}", id="action-log", classes="text-caption mx-2", data_count=("actionCount",),
                      **dataAttributes("data_count"))
            actionButton("Undo", page.ctrl.undo, "undo", disabled=("!canUndo",))
        with layout.drawer:
            v3.VAlert(v_if="error", text=("error",), type="error", density="compact", id="error", classes="ma-1",
                      closable=True, click_close="error = ''")
            v3.VAlert(v_if="info", text=("info",), type="info", density="compact", id="info", classes="ma-1")
            with v3.VExpansionPanels(multiple=True, v_model=("openSections", ["files", "segments", "classic"]),
                                     variant="accordion"):
                for panel in page.panels:
                    with section(panel.title, panel.key), v3.Template(v_slot_text=True):
                        panel.buildUi()
        with layout.content:
            with html.Div(style="position: relative; width: 100%; height: calc(100vh - 64px);", id="views"):
                page.layoutManager.initialize_layout_grid(layout)
    return layout
