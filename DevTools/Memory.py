"""Peak resident memory of this process, for the benchmarks (Linux: VmHWM, which can be reset)."""

import resource


def _statusKilobytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def resetPeakMemory():
    """Resets the peak resident set size (Linux: VmHWM via clear_refs) and returns the current one (kB).

    Elsewhere falls back to ru_maxrss, whose high-water mark cannot be reset (the delta may then read 0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clearRefs:
            clearRefs.write("5")
        return _statusKilobytes("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peakMemory():
    try:
        return _statusKilobytes("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
