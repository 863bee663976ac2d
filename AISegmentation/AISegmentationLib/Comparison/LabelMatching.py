"""Which structure of the reference goes with which of the compared side: pairs of keys (segment IDs or label
values) with None on the side that lacks a structure, so that every structure of either side is a row.

No MRML: the sides are given as ordered {key: match key} dicts (a name or a label value per key).
"""


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
