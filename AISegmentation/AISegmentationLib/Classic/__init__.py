"""Classic segmentation tools, one folder per tool as Slicer's Segment Editor has one per effect: Threshold/ (with the
automatic methods), LevelTracing/, GrowFromSeeds/ (with its preview session), Islands/. Each folder holds the tool's
declaration and run (<Tool>Tool.py, a Tool.ClassicTool) and its computing module; Registry.py lists them and says
how to add one. The Logic runs any of them (runClassicTool) and keeps the documented console calls (threshold,
levelTrace, growFromSeeds, keepLargestIsland, removeSmallIslands...) as their entry points."""
