"""Every CSV file the tool writes goes through here, so that none can run as a formula in a spreadsheet.

Label and segment names come from files other people made (a model's dataset.json, a reference's name table): a name
such as ``=HYPERLINK("http://...")`` written as is becomes a live formula when the CSV is opened in Excel or
LibreOffice. As OWASP's "CSV Injection" page recommends, a text cell that begins with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return is prefixed with a single quote (and the csv module quotes what needs quoting). Numbers stay
numbers: ``-1.5``, ``-inf`` and numeric values are written unchanged.

    writeCsv("out/table.csv", ["structure", "dice"], [["=cmd|' /C calc'!A0", 0.91]])   # '=cmd|' /C calc'!A0,0.91
"""

import csv
import io
import re

from .AtomicWrite import writeText

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]?inf|nan", re.IGNORECASE)


def safeCell(value):
    """The value as a CSV cell: None is empty, numbers unchanged, a text that a spreadsheet would take for a formula
    prefixed with a single quote."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float)) or type(value).__module__ == "numpy":
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(text):
        return "'" + text
    return text


def csvText(header, rows):
    """CSV text (\\n line ends) of a header and rows (sequences of values), every cell through safeCell. Each row is
    written with \\r\\n as the csv module's terminator, so that a cell holding a carriage return is quoted too."""
    lines = []
    for row in [header, *rows]:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow([safeCell(value) for value in row])
        lines.append(buffer.getvalue()[:-2])
    return "\n".join(lines) + "\n"


def writeCsv(path, header, rows):
    """Write a CSV file (UTF-8) atomically; returns the path."""
    writeText(path, csvText(header, rows))
    return path


def writeDictRows(path, rows, columns=None):
    """Write dicts as CSV (columns: the first row's keys unless given), atomically; returns the path."""
    columns = list(columns or (rows[0] if rows else []))
    return writeCsv(path, columns, [[row.get(name) for name in columns] for row in rows])
