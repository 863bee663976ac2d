"""Developer tools shared by the tests (AISegmentation/Testing/Python) and the benchmark scripts (Scripts/): synthetic
volumes (SyntheticImages.py), the tiny nnU-Net models and the backends' test environments (TinyModels.py,
build_tiny_models.py), the real nnInteractive servers and their tiny model (InteractiveServers.py,
start_nninteractive_server.py, build_tiny_nninteractive.py) and peak memory (Memory.py).

Not part of the Slicer module, and never imported by it or by AISegmentationLib. It imports neither the tests nor
Scripts/; it needs the module folder (AISegmentation/) and the repository root on the path."""
