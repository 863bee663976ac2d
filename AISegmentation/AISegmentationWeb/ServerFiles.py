"""Paths typed on the page are read in a worker thread first, so that no read can stall the event loop.

The event loop serves every user of the page; a blocking read there (a FIFO, a device, a stalled network mount)
froze them all. Before the Logic loads a path (on the loop: MRML and VTK objects are not thread-safe), a worker
thread checks that it is a regular file or a folder of regular files and reads it through once (the loader then
reads from the page cache). A path that is anything else, or cannot be read within READ_SECONDS, is refused with a
message; a worker stuck on a read stays in its thread and blocks no one.
"""

import asyncio
import os
import stat

READ_SECONDS = 120.0
MAX_FOLDER_ENTRIES = 20000
_BLOCK = 16 * 2**20
_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def _kindOf(mode):
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _readRegularFile(path):
    """Read a regular file through without ever blocking on open (O_NONBLOCK); ValueError for anything else."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is {_kindOf(mode)}: only regular files are read")
        while os.read(descriptor, _BLOCK):
            pass
    finally:
        os.close(descriptor)


def requireReadableFiles(path):
    """ValueError unless path is a regular file or a folder whose entries are all regular files or folders (each
    read through once). Runs in a worker thread (readInWorker)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}") from None
    if stat.S_ISREG(mode):
        _readRegularFile(path)
        return
    if not stat.S_ISDIR(mode):
        raise ValueError(f"{path} is {_kindOf(mode)}: only regular files and folders are read")
    count = 0
    for folder, _, names in os.walk(path):
        for name in names:
            count += 1
            if count > MAX_FOLDER_ENTRIES:
                raise ValueError(f"{path} holds more than {MAX_FOLDER_ENTRIES} files")
            _readRegularFile(os.path.join(folder, name))


async def readInWorker(path, seconds=READ_SECONDS):
    """requireReadableFiles(path) in a worker thread; ValueError when it takes longer than `seconds`."""
    try:
        await asyncio.wait_for(asyncio.to_thread(requireReadableFiles, path), seconds)
    except asyncio.TimeoutError:
        raise ValueError(f"{path} could not be read within {seconds:.0f} s") from None
