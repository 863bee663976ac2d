"""AISegmentation library: everything that computes, usable inside desktop Slicer and headless on slicer-core.

This package's ``__init__`` deliberately imports nothing heavy: Slicer-free modules (e.g. ``SegmentComparison``)
must import on a machine that has only numpy/scipy/torch. Import the pieces you need, for example::

    from AISegmentationLib.Logic import AISegmentationLogic
"""
