"""`aisegmentation --help` (the launcher, Scripts/aisegmentation) lists every subcommand: the parser's, and those the
launcher starts itself (web, in its own environment)."""

import os
import re
import subprocess

from AISegmentationLib.CommandLine.Main import buildParser

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAUNCHER = os.path.join(REPOSITORY, "Scripts", "aisegmentation")


def _parserCommands():
    parser = buildParser()
    action = next(action for action in parser._actions if action.dest == "command")
    return set(action.choices)


def test_help_lists_every_subcommand_the_launcher_and_the_parser_run():
    launcherCommands = set(re.findall(r'\[ "\$\{1:-\}" = "([\w-]+)" \]', open(LAUNCHER, encoding="utf-8").read()))
    assert launcherCommands, "the launcher's own subcommands (e.g. web) were not found"
    shown = subprocess.run(["bash", LAUNCHER, "--help"], capture_output=True, text=True, check=True,
                           timeout=300).stdout
    listed = set(re.search(r"\{([\w,-]+)\}", shown).group(1).split(","))
    assert listed == _parserCommands() | launcherCommands
    for command in sorted(listed):  # each with its one-line help
        assert re.search(rf"^\s+{re.escape(command)}\s+\S", shown, re.M), command
