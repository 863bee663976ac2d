"""Validation of numeric options at the Logic boundary: finite numbers in their domain, or a ValueError that names
the option, its value and the allowed range.

Slicer-free (math and numpy only), so that the numeric engines (e.g. SegmentComparison) can use it on a machine
without Slicer.
"""

import math

import numpy as np


def _isNumberLike(value):
    return not isinstance(value, (str, bytes, bool, np.bool_))


def _domainText(minimum, maximum, minimumInclusive, maximumInclusive, unit):
    suffix = f" {unit}" if unit else ""
    if minimum is not None and maximum is not None:
        opening, closing = "[" if minimumInclusive else "(", "]" if maximumInclusive else ")"
        return f"a finite number in {opening}{minimum:g}, {maximum:g}{closing}{suffix}"
    if minimum is not None:
        return f"a finite number {'>=' if minimumInclusive else '>'} {minimum:g}{suffix}"
    if maximum is not None:
        return f"a finite number {'<=' if maximumInclusive else '<'} {maximum:g}{suffix}"
    return f"a finite number{suffix}"


def _finiteOrNone(value):
    """float(value) for a finite real number (bool and text are not numbers here), else None."""
    try:
        number = float(value) if _isNumberLike(value) else None
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number is not None and math.isfinite(number) else None


def requireNumber(name, value, minimum=None, maximum=None, minimumInclusive=True, maximumInclusive=True, unit=""):
    """float(value) when value is a finite real number within the bounds; otherwise ValueError
    "<name> must be <domain>, got <value>"."""
    domain = _domainText(minimum, maximum, minimumInclusive, maximumInclusive, unit)
    number = _finiteOrNone(value)
    if number is None:
        raise ValueError(f"{name} must be {domain}, got {value!r}")
    if minimum is not None and (number < minimum or (number == minimum and not minimumInclusive)):
        raise ValueError(f"{name} must be {domain}, got {value!r}")
    if maximum is not None and (number > maximum or (number == maximum and not maximumInclusive)):
        raise ValueError(f"{name} must be {domain}, got {value!r}")
    return number


def requireInteger(name, value, minimum=None, maximum=None):
    """int(value) when value is a finite whole number (3 or 3.0) in [minimum, maximum]; otherwise ValueError."""
    if minimum is not None and maximum is not None:
        domain = f"a whole number in [{minimum}, {maximum}]"
    elif minimum is not None:
        domain = f"a whole number >= {minimum}"
    else:
        domain = "a whole number"
    number = _finiteOrNone(value)
    if number is None or number != math.floor(number):
        raise ValueError(f"{name} must be {domain}, got {value!r}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name} must be {domain}, got {value!r}")
    return int(number)


def requireRange(name, bounds, unit=""):
    """(low, high) as floats when bounds is a pair of finite numbers with low <= high; otherwise ValueError
    "<name> must be ..., got <bounds>" (a reversed range says "minimum above maximum")."""
    suffix = f" {unit}" if unit else ""
    try:
        low, high = bounds
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (minimum, maximum) of finite numbers{suffix}, got {bounds!r}") \
            from None
    for value in (low, high):
        if _finiteOrNone(value) is None:
            raise ValueError(f"{name} must be two finite numbers{suffix}, got ({low!r}, {high!r})")
    if float(low) > float(high):
        raise ValueError(f"{name} = ({low!r}, {high!r}) has its minimum above maximum")
    return float(low), float(high)


def requirePoints(name, points, dimension=3):
    """Float array (N x dimension, N >= 1) of finite coordinates; one point may be given as a flat sequence.
    ValueError naming the first point with a NaN or infinite coordinate."""
    try:
        array = np.atleast_2d(np.asarray(points, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be points of {dimension} finite coordinates, got {points!r}") from None
    if array.size == 0:
        raise ValueError(f"{name}: no points given")
    if array.ndim != 2 or array.shape[1] != dimension:
        raise ValueError(f"{name} must be points of {dimension} coordinates each, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        point = ", ".join(str(v) for v in array[bad[0]])
        raise ValueError(f"{name} must have finite coordinates: point {int(bad[0]) + 1} of {len(array)} is "
                         f"({point})")
    return array


def countNonFinite(array):
    """Number of NaN or infinite values of a numpy array (0 at once for integer arrays)."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))
