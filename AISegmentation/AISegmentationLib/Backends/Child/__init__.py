"""What runs in a backend's own environment: the child's entry point, its protocol, torch devices, checkpoints,
postprocessing, the process tree and safe zip extraction. These import only the standard library and numeric packages
(never slicer, never this package), by bare name: ChildWorker puts this folder on the search path."""
