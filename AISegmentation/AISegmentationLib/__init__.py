"""AISegmentation library: everything that computes, usable inside desktop Slicer and headless on slicer-core.

Grouped by area: the facade (Logic.py) and the shared base at the top (Runtime, SegmentEditing, Segments, Geometry,
VolumeIO, SegmentationIO and their helpers: AtomicWrite, FileIntegrity, DicomGeometry, Validation,
RuntimeRequirements, RuntimeInstall, SampleData); Classic/ (threshold, level tracing, grow from seeds,
islands); Comparison/ (the numeric engine and its MRML side); Backends/ (AI backends as plugins and the AI logic);
Interactive/ (nnInteractive client and its logic); Demo/; CommandLine/ (the headless command line).

This package's ``__init__`` deliberately imports nothing heavy: Slicer-free modules (e.g.
``Comparison.SegmentComparison``) must import on a machine that has only numpy/scipy/torch. Import the pieces you
need, for example::

    from AISegmentationLib.Logic import AISegmentationLogic
"""
