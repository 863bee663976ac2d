"""The one interface every AI backend implements (a new backend = one new file plus its Child*.py side).

The parent side (this process, Slicer's) only validates and describes a run; the work happens in the backend's
child module (``Child<Name>.py`` run by ChildWorker.py) in a separate process and, usually, a separate environment.
"""

from dataclasses import dataclass, field


@dataclass
class PreparedRun:
    """A validated run: everything the job runner and the result import need, nothing executed yet."""

    childOptions: dict  # JSON-serializable options for the child module
    channels: list  # names of the input volumes expected, in order
    description: str  # the model, for the provenance tags
    parameters: dict  # the user's parameters, for the provenance tags (no secrets)
    labelNames: dict = None  # {value: name} when known before the run (sent to the child)
    environment: dict = field(default_factory=dict)  # extra variables for the child process
    memoryModel: dict = field(default_factory=dict)  # MemoryEstimate.estimateMemory keyword arguments


class Backend:
    """Base class; subclasses set the class attributes and implement :meth:`prepare`."""

    name = ""  # key used by the Logic, the CLI and the child ("nnunet")
    title = ""  # for people ("nnU-Net v2")
    environmentName = ""  # isolated environment that holds its packages
    packages = ()  # modules that must import in the Python that runs it
    suggestions = ()  # what helps when memory is short

    def prepare(self, **options):
        """Validate and normalize the options into a :class:`PreparedRun`; ValueError with a clear message."""
        raise NotImplementedError

    def segmentationName(self, volumeName):
        return f"{volumeName} {self.title}"
