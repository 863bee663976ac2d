"""The module panel's sections (Qt side, loaded by AISegmentation.py): one class per collapsible section, as the web
page has one file per panel. AISegmentationWidget composes them; AISegmentationLib never imports this package.

Nothing here imports qt, ctk or a loadable module's wrappers at import time (AISegmentation.py runs when `slicer`
holds only the startup kits): Qt is imported inside the methods that use it."""
