"""The headless command line (``Scripts/aisegmentation``, or ``python -m AISegmentationLib.CommandLine``): Main.py
parses the arguments and runs the subcommands on the facade, Segment.py generates the ``segment BACKEND``
subcommands from the backends' declarations. The Slicer module never imports this package; it imports no Qt."""
