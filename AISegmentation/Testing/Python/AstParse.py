"""ast.parse that survives CPython 3.11's "AST constructor recursion depth mismatch" (a SystemError of the C AST
converter's recursion bookkeeping, python/cpython gh-106905, fixed in later 3.11 releases than the 3.11.7 of
slicer-core's venv). It struck the static tests (module, widget and import-graph checks) at random in full runs,
never alone. The same parse in a fresh thread starts from fresh recursion counters; any other error is raised."""

import ast
import threading

_originalParse = ast.parse


def parse(*args, **kwargs):
    try:
        return _originalParse(*args, **kwargs)
    except SystemError as error:
        if "recursion depth mismatch" not in str(error):
            raise
    outcome = {}

    def parseHere():
        try:
            outcome["tree"] = _originalParse(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=parseHere, name="ast-parse")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["tree"]


def install():
    """Make ast.parse this function for the whole test session (the tests call ast.parse)."""
    ast.parse = parse
