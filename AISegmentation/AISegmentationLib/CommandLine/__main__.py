"""``python -m AISegmentationLib.CommandLine``: the command line's entry point (exit code of Main.main)."""

import sys

from .Main import EXIT_SIGINT, INTERRUPTED_NOTE, main

try:
    sys.exit(main())
except KeyboardInterrupt:  # before main's own handling took over (argument parsing, imports)
    print(f"aisegmentation: interrupted (Ctrl-C); {INTERRUPTED_NOTE}", file=sys.stderr)
    sys.exit(EXIT_SIGINT)
