"""AISegmentation in the browser: a thin trame-slicer shell over the same Logic as the Slicer panel and the CLI.

Run with ``Scripts/aisegmentation web`` (environment .venv-web, see requirements.txt). The page computes nothing of
its own: every tool calls :class:`AISegmentationLib.Logic.AISegmentationLogic`; paint, erase and scissors are
trame-slicer's segment editor effects.
"""
