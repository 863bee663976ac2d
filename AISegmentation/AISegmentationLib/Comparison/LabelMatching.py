"""Which structure of the reference goes with which of the compared side: pairs of keys (segment IDs or label
values) with None on the side that lacks a structure, so that every structure of either side is a row.

Matching is a choice: by label value, by name, or "auto" (by name only when both sides carry names). Label
homogenization (ground truths from different protocols): a mapping of synonyms and label values to canonical
structure names ("Liver", "liver_1", 6 -> "liver"), for either side, applied before matching by name; the rows say
which source segment became which structure. No MRML: the sides are given as ordered {key: (name, label value)}.
"""

import csv
import io
import json
import os


def pairByMatchKey(referenceKeys, comparedKeys, preferLast=False):
    """[(reference key, compared key)] from {key: match key} of each side, in the reference's order, then the
    compared keys that matched nothing as (None, key) in the compared side's order; a reference key without a
    compared counterpart is (key, None). Several compared keys with one match key: the first is taken (the last with
    ``preferLast``), the others are compared-only rows."""
    compared = {}
    for key, matchKey in comparedKeys.items():
        if preferLast or matchKey not in compared:
            compared[matchKey] = key
    pairs = [(key, compared.get(matchKey)) for key, matchKey in referenceKeys.items()]
    used = {comparedKey for _, comparedKey in pairs if comparedKey is not None}
    return pairs + [(None, key) for key in comparedKeys if key not in used]


def normalizedName(name):
    """Names match case-insensitively, surrounding spaces ignored."""
    return str(name).strip().lower()


MATCH_MODES = ("auto", "value", "name")
SIDES = ("reference", "compared")


def resolveMatch(match, referenceNamed=True, comparedNamed=True, mapping=None):
    """"value" or "name" for a match mode: "auto" pairs by name only when both sides carry names (or a mapping names
    the structures), else by value. ValueError for an unknown mode, or "value" with a mapping (which pairs by
    structure name)."""
    match = "auto" if match is None else match
    if match not in MATCH_MODES:
        raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
    if mapping and match == "value":
        raise ValueError(f"A label mapping ({mapping.source}) pairs structures by name: use match 'name' or 'auto', "
                         "not 'value'")
    if match == "auto":
        return "name" if mapping or (referenceNamed and comparedNamed) else "value"
    return match


def matchStructures(referenceSegments, comparedSegments, match="auto", mapping=None, referenceNamed=True,
                    comparedNamed=True):
    """[(reference key, compared key, structure name)] of two sides given as ordered {key: (name, label value)}:
    every segment of either side (None on the side without it). By value (several compared segments of one value:
    the last is paired), or by name (case-insensitive; first compared segment of a name), the names first put
    through the mapping (:class:`LabelMapping`) when one is given. The structure is the mapping's name, else the
    reference segment's name (the compared one's when the reference lacks it)."""
    mode = resolveMatch(match, referenceNamed, comparedNamed, mapping)
    if mode == "value":
        pairs = pairByMatchKey({key: value for key, (_, value) in referenceSegments.items()},
                               {key: value for key, (_, value) in comparedSegments.items()}, preferLast=True)
        structures = {}
    else:
        structures = {}
        keys = []
        for side, segments in (("reference", referenceSegments), ("compared", comparedSegments)):
            found = {key: mapping.structure(side, name, value) for key, (name, value) in segments.items()
                     } if mapping else {}
            mapped = {key: structure for key, structure in found.items() if structure}
            structures[side] = {key: mapped.get(key) or name for key, (name, _) in segments.items()}
            if mapped:
                mapping.requireOneSegmentPerStructure(side, segments, structures[side], mapped)
            keys.append({key: normalizedName(name) for key, name in structures[side].items()})
        pairs = pairByMatchKey(*keys)
    result = []
    for referenceKey, comparedKey in pairs:
        if structures:
            name = (structures["reference"][referenceKey] if referenceKey is not None
                    else structures["compared"][comparedKey])
        else:
            name = (referenceSegments[referenceKey][0] if referenceKey is not None
                    else comparedSegments[comparedKey][0])
        result.append((referenceKey, comparedKey, name))
    return result


class LabelMapping:
    """Label homogenization: synonyms (names, case-insensitive) and label values mapped to canonical structure names,
    for both sides or one. Made by :func:`readLabelMapping`; ``entries``: [(side or None, source, structure, where)]
    with ``source`` an int (a label value) or a str (a name) and ``where`` the entry's place for messages."""

    def __init__(self, entries, source):
        self.source = source
        self.entries = list(entries)
        self._byValue = {side: {} for side in SIDES}
        self._byName = {side: {} for side in SIDES}
        for side, synonym, structure, where in self.entries:
            for target in (SIDES if side is None else (side,)):
                table, key = ((self._byValue, synonym) if isinstance(synonym, int)
                              else (self._byName, normalizedName(synonym)))
                previous = table[target].get(key)
                if previous is not None and normalizedName(previous[0]) != normalizedName(structure):
                    raise ValueError(f"Label mapping {source}: {where} maps {synonym!r} to {structure!r}, but "
                                     f"{previous[1]} maps it to {previous[0]!r} ({target} side)")
                table[target][key] = (structure, where)
            self._requireOneValuePerStructure(side, synonym, structure, where)

    def _requireOneValuePerStructure(self, side, synonym, structure, where):
        if not isinstance(synonym, int):
            return
        for target in (SIDES if side is None else (side,)):
            for value, (other, otherWhere) in self._byValue[target].items():
                if value != synonym and normalizedName(other) == normalizedName(structure):
                    raise ValueError(f"Label mapping {self.source}: {where} maps value {synonym} to {structure!r}, "
                                     f"which {otherWhere} already gives value {value} on the {target} side: two "
                                     "values of one side cannot be one structure")

    def __bool__(self):
        return bool(self.entries)

    def structure(self, side, name, value):
        """The canonical name of a segment (by its label value first, then its name), or None when unmapped."""
        found = self._byValue[side].get(value) if isinstance(value, int) else None
        found = found or self._byName[side].get(normalizedName(name))
        return None if found is None else found[0]

    def requireOneSegmentPerStructure(self, side, segments, structures, mapped):
        """ValueError when the mapping made two segments of one side one structure (``mapped``: the keys it named)."""
        seen = {}
        for key, structure in structures.items():
            other = seen.setdefault(normalizedName(structure), key)
            if other != key and (key in mapped or other in mapped):
                raise ValueError(f"Label mapping {self.source}: {segments[other][0]!r} and {segments[key][0]!r} of "
                                 f"the {side} side both become {structure!r}; one side's segments must stay apart")

    def asDict(self):
        """A plain, JSON-ready form that :func:`readLabelMapping` reads back (e.g. sent to a cluster worker)."""
        return {"source": self.source, "entries": [list(entry) for entry in self.entries]}


def readLabelMapping(source):
    """A :class:`LabelMapping` (None for None) from a JSON or CSV file, a dict, or a mapping's ``asDict()``.

    JSON: {"liver": ["Liver", "liver_1", 6], "spleen": "Spleen"} (structure: its synonyms and label values, for both
    sides), or {"reference": {...}, "compared": {...}} with such an object per side. CSV: a header
    ``source,structure[,side]``, then one synonym or label value per line (side: reference, compared or both; empty:
    both). A text of digits is a label value. ValueError naming the file and the entry for anything else, for a value
    0, for a synonym given two structures, or for two values of one side given one structure."""
    if source is None or isinstance(source, LabelMapping):
        return source
    if isinstance(source, dict) and set(source) == {"source", "entries"}:
        return LabelMapping([tuple(entry) for entry in source["entries"]], source["source"])
    if isinstance(source, dict):
        return LabelMapping(_jsonEntries(source, "(given as a dict)"), "(given as a dict)")
    path = os.fspath(source)
    where = f"'{path}'"
    if not os.path.isfile(path):
        raise ValueError(f"Label mapping file {where} does not exist")
    extension = path.lower().rsplit(".", 1)[-1]
    if extension not in ("json", "csv"):
        raise ValueError(f"Label mapping file {where} must be .json or .csv")
    try:
        with open(path, encoding="utf-8", newline="") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Label mapping file {where} cannot be read: {error}") from None
    if extension == "csv":
        return LabelMapping(_csvEntries(text, where), where)
    try:
        content = json.loads(text)
    except ValueError as error:
        raise ValueError(f"Label mapping file {where} is not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise ValueError(f"Label mapping file {where} must hold a JSON object, got {type(content).__name__}")
    return LabelMapping(_jsonEntries(content, where), where)


def _jsonEntries(content, where):
    if content and set(content) <= set(SIDES) and all(isinstance(part, dict) for part in content.values()):
        return [entry for side, part in content.items() for entry in _structureEntries(part, side, where)]
    return _structureEntries(content, None, where)


def _structureEntries(content, side, where):
    entries = []
    for structure, synonyms in content.items():
        entry = f"entry {structure!r}" + (f" of '{side}'" if side else "")
        if not str(structure).strip():
            raise ValueError(f"Label mapping {where}: {entry} has an empty structure name")
        for synonym in synonyms if isinstance(synonyms, list) else [synonyms]:
            entries.append((side, _synonym(synonym, where, entry), str(structure).strip(), entry))
    return entries


def _csvEntries(text, where):
    rows = list(csv.reader(io.StringIO(text)))
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if header[:2] != ["source", "structure"] or len(header) > 3 or header[2:] not in ([], ["side"]):
        raise ValueError(f"Label mapping {where}: the first line must be 'source,structure' or "
                         f"'source,structure,side', got {','.join(rows[0]) if rows else 'nothing'!r}")
    entries = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        entry = f"line {number}"
        if len(row) > len(header) or len(row) < 2 or not row[1].strip():
            raise ValueError(f"Label mapping {where}: {entry} must be source,structure[,side], got {row!r}")
        side = row[2].strip().lower() if len(row) > 2 and row[2].strip() else "both"
        if side not in SIDES + ("both",):
            raise ValueError(f"Label mapping {where}: {entry} has side {row[2]!r}; use reference, compared or both")
        entries.append((None if side == "both" else side, _synonym(row[0], where, entry), row[1].strip(), entry))
    return entries


def _synonym(value, where, entry):
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0:
            raise ValueError(f"Label mapping {where}: {entry} maps label value 0, which is background")
        return value
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"Label mapping {where}: {entry} has {value!r}; a synonym is a name or a label value")
