"""``aisegmentation <tool>`` for the classic tools, generated from their declarations (Classic/Registry.py): the
inputs from what the tool needs (a segment, seed segments, a seed point, several volumes), one argument per option
(as ``segment <backend>``: type, choices, default and help), the run through ``Logic.runClassicTool``. Wired into
Main.py with ``addClassicParsers(commands)``; a tool with handMadeFronts (threshold, level-trace, grow-from-seeds,
islands: their flags predate the declarations) keeps its subcommand in Main.py."""

from ..Classic import Registry
from .Segment import OPTION_PREFIX, addOptionArgument


def addClassicParsers(commands):
    """Add a subcommand for every registered classic tool whose fronts are generated; returns their names."""
    from .Common import addInputs as _addInputs

    added = []
    for tool in Registry.allTools().values():
        if tool.handMadeFronts:
            continue
        parser = commands.add_parser(tool.name, help=tool.title, description=tool.help)
        _addInputs(parser, segmentRequired="segment" in tool.needs)
        if "seedPoint" in tool.needs:
            parser.add_argument("--seed", nargs=3, type=float, required=True, metavar=("R", "A", "S"),
                                help="seed point in RAS millimetres")
        if "seedPoints" in tool.needs:
            parser.add_argument("--seed-points", required=True, metavar="MARKUPS",
                                help="seed points: a Slicer markups file (.mrk.json)")
        if "seedSegments" in tool.needs:
            parser.add_argument("--seeds", action="append", default=[], metavar="NAME=MARKUPS",
                                help="segment NAME seeded from the points of a Slicer markups file (repeatable)")
            parser.add_argument("--seed-segments", nargs="+", default=[],
                                help="names of existing seed segments in --segmentation")
            parser.add_argument("--seed-radius", type=float, default=5.0,
                                help="radius in mm painted around each seed point")
        if "volumes" in tool.needs:
            parser.add_argument("--volumes", nargs="+", required=True, metavar="VOLUME",
                                help="the other volumes the tool needs (see its help)")
        for option in tool.options:
            addOptionArgument(parser, option)
        added.append(tool.name)
    return added


def runClassicCommand(logic, args):
    """Run the tool of args.command on the inputs and options of its generated subcommand, then save."""
    from .Common import loadVolume, prepareInputs as _prepare, saveOutputs as _save, seedSegmentIds

    tool = Registry.getTool(args.command)
    volume, segmentation = _prepare(logic, args)
    inputs = {}
    if "segment" in tool.needs:
        inputs["segmentId"] = logic.getOrAddSegment(segmentation, args.segment)
    if "seedPoint" in tool.needs:
        inputs["seedPoints"] = [args.seed]
    if "seedPoints" in tool.needs:
        inputs["seedPoints"] = logic.loadMarkupsPoints(args.seed_points)
    if "seedSegments" in tool.needs:
        inputs["seedSegmentIds"] = seedSegmentIds(logic, args, volume, segmentation)
    if "volumes" in tool.needs:
        inputs["volumes"] = [loadVolume(logic, args, path) for path in args.volumes]
    options = {option.name: getattr(args, OPTION_PREFIX + option.name) for option in tool.options}
    logic.runClassicTool(tool.name, volume, segmentation, **inputs, **options)
    _save(logic, args, volume, segmentation)
