"""Child process trees that never outlive the process that started them; liveness tests that work on Windows.

Standard library only: ChildWorker.py imports this module in a backend's own environment, too.

A child started with :func:`childPopenOptions` leads a process tree of its own that :func:`killTree` ends at once:
- POSIX: a new session (its own process group), so one signal reaches every process it started. On Linux the
  kernel also sends the direct child SIGHUP when the thread that started it ends (``PR_SET_PDEATHSIG``: JobRunner
  starts each child from the job's driver thread, which lives until the child ended), so a crash or kill of Slicer
  ends it: SIGHUP ends a process that does not handle it (uv, pip, a launcher), and a backend worker handles it by
  ending its whole process group (:func:`endWithStarter`), which also reaches its own children.
- Windows: ``CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW`` (no console window pops up), and the child is put in a
  Job object created with ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``: when the starting process ends for any reason,
  the system closes its handle and kills every process of the job, descendants included (see :class:`WindowsJob`).
A backend worker also watches the process that started the job (:func:`watchProcess`, pid from
``$AISEGMENTATION_PARENT_PID``) and ends its own process group when that one is gone: this covers a worker started
through a launcher (desktop Slicer's ``PythonSlicer`` runs python-real as its child, so the worker is not the direct
child) and macOS (no death signal). :func:`endTreesAtExit` ends the trees still running when Python exits normally.

``os.kill(pid, 0)`` is no liveness test on Windows (it sends CTRL_C_EVENT there): :func:`processAlive` asks the
system through ``OpenProcess`` / ``GetExitCodeProcess`` instead.
"""

import atexit
import os
import signal
import subprocess
import sys
import threading
import time

PARENT_PID_VARIABLE = "AISEGMENTATION_PARENT_PID"
STILL_ACTIVE = 259
ERROR_ACCESS_DENIED = 5
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
SYNCHRONIZE = 0x00100000
PR_SET_PDEATHSIG = 1
_running = set()  # processes started by this module and not yet ended
_runningLock = threading.Lock()


# Liveness ------------------------------------------------------------------------------------------------------

def windowsProcessAlive(pid, openProcess, exitCode, closeHandle, lastError):
    """The Windows liveness test on injected Win32 calls (ctypes bindings in :func:`_win32`).

    openProcess(access, inherit, pid) -> handle or 0; exitCode(handle) -> the exit code (STILL_ACTIVE while running)
    or None when the call failed; lastError() -> the error code of the failed OpenProcess.
    """
    if pid is None or pid <= 0:
        return False
    handle = openProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
    if not handle:
        return lastError() == ERROR_ACCESS_DENIED  # exists, but belongs to someone else; else no such process
    try:
        return exitCode(handle) == STILL_ACTIVE
    finally:
        closeHandle(handle)


def posixProcessAlive(pid):
    """True while the process runs (a zombie waiting for its parent counts as ended where /proc tells)."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            return file.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def processAlive(pid, platform=None):
    """True while process pid runs, on every platform; platform defaults to sys.platform."""
    if (platform or sys.platform) == "win32":
        calls = _win32()
        return windowsProcessAlive(pid, calls.OpenProcess, calls.exitCode, calls.CloseHandle, calls.lastError)
    return posixProcessAlive(pid)


def _win32():
    """ctypes bindings of the few Win32 calls used here (Windows only)."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    kernel32.OpenProcess.restype = wintypes.HANDLE
    kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
    kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
    kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)

    def exitCode(handle):
        code = wintypes.DWORD()
        return code.value if kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) else None

    kernel32.exitCode = exitCode
    kernel32.lastError = ctypes.get_last_error
    return kernel32


# Starting and ending trees -------------------------------------------------------------------------------------

def _linuxDeathSignal():
    """A preexec function that asks the kernel to send SIGHUP to the child when its starting thread ends (Linux)."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before fork: the child only calls it
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGHUP)


def hiddenWindow(platform=None):
    """Popen keyword arguments for a short helper command: no console window on Windows."""
    if (platform or sys.platform) == "win32":
        return {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)}
    return {}


def childPopenOptions(platform=None, deathSignal=True):
    """subprocess.Popen keyword arguments that start a child as the root of its own, hidden, killable tree.

    deathSignal False: no Linux death signal (for a child that must outlive the thread starting it, e.g. a server
    started from a worker thread; it then watches $AISEGMENTATION_PARENT_PID itself, see endWithStarter)."""
    platform = platform or sys.platform
    if platform == "win32":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200) | getattr(subprocess, "CREATE_NO_WINDOW",
                                                                                 0x08000000)
        return {"creationflags": flags}
    options = {"start_new_session": True}
    if platform.startswith("linux") and deathSignal:
        options["preexec_fn"] = _linuxDeathSignal()
    return options


def startTree(command, deathSignal=True, **popenArguments):
    """Popen a child as the root of its own tree (see the module docstring); it is ended when Python exits."""
    process = subprocess.Popen(command, **childPopenOptions(deathSignal=deathSignal), **popenArguments)
    if sys.platform == "win32":
        try:
            WindowsJob.shared().assign(process)
        except OSError:  # e.g. a Windows older than 8 inside another job: the tree still ends on cancel
            pass
    with _runningLock:
        _running.add(process)
    return process


def forget(process):
    with _runningLock:
        _running.discard(process)


def killTree(process, signalNumber=None):
    """End the child's whole tree (POSIX: signal its process group; Windows: taskkill /T while it runs)."""
    if sys.platform == "win32":
        if process.poll() is None:  # never signal a PID that the system may have reused
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False,
                           **hiddenWindow())
        return
    try:
        os.killpg(process.pid, signalNumber or signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def endTreesAtExit():
    """Kill the trees of children still running (normal end of Python, e.g. quitting Slicer during a job)."""
    with _runningLock:
        processes = list(_running)
        _running.clear()
    for process in processes:
        killTree(process)


class WindowsJob:
    """A Win32 Job object that kills its processes when the last handle to it closes (this process ends)."""

    _instance = None

    def __init__(self):
        import ctypes
        from ctypes import wintypes

        class IoCounters(ctypes.Structure):
            _fields_ = [(name, ctypes.c_ulonglong) for name in (
                "ReadOperationCount", "WriteOperationCount", "OtherOperationCount", "ReadTransferCount",
                "WriteTransferCount", "OtherTransferCount")]

        class BasicLimits(ctypes.Structure):
            _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                        ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                        ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                        ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                        ("SchedulingClass", wintypes.DWORD)]

        class ExtendedLimits(ctypes.Structure):
            _fields_ = [("BasicLimitInformation", BasicLimits), ("IoInfo", IoCounters),
                        ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                        ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.CreateJobObjectW.restype = wintypes.HANDLE
        kernel32.AssignProcessToJobObject.argtypes = (wintypes.HANDLE, wintypes.HANDLE)
        self._kernel32 = kernel32
        self._handle = kernel32.CreateJobObjectW(None, None)
        if not self._handle:
            raise ctypes.WinError(ctypes.get_last_error())
        limits = ExtendedLimits()
        limits.BasicLimitInformation.LimitFlags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        extendedLimitInformation = 9
        if not kernel32.SetInformationJobObject(self._handle, extendedLimitInformation, ctypes.byref(limits),
                                                ctypes.sizeof(limits)):
            raise ctypes.WinError(ctypes.get_last_error())

    @classmethod
    def shared(cls):
        """The one job of this process (its handle stays open until the process ends)."""
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def assign(self, process):
        import ctypes

        if not self._kernel32.AssignProcessToJobObject(self._handle, int(process._handle)):
            raise ctypes.WinError(ctypes.get_last_error())


# The child side ------------------------------------------------------------------------------------------------

def watchProcess(pid, onGone, interval=0.5, alive=processAlive):
    """Call onGone() from a daemon thread once process pid has ended (checked every interval seconds)."""
    def watch():
        while alive(pid):
            time.sleep(interval)
        onGone()

    thread = threading.Thread(target=watch, name=f"watch process {pid}", daemon=True)
    thread.start()
    return thread


def endOwnTree():
    """End this process and everything in its tree.

    POSIX: the whole process group when it is the group of a session of its own (started by childPopenOptions,
    through a launcher or not); otherwise (e.g. started from a shell) only this process. Windows: this process; the
    Job object of the starting process ends the rest.
    """
    if sys.platform != "win32" and os.getpgrp() == os.getsid(0):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    os._exit(1)


def endWithStarter(environ=None):
    """In a child (main thread): end this tree when the process named by $AISEGMENTATION_PARENT_PID (or, without
    it, the parent) ends, or on SIGHUP (the parent-death signal). Returns the watcher thread, or None."""
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda number, frame: endOwnTree())
    value = (environ if environ is not None else os.environ).get(PARENT_PID_VARIABLE, "")
    pid = int(value) if value.isdigit() else os.getppid()
    if pid <= 1:
        return None
    return watchProcess(pid, endOwnTree)
