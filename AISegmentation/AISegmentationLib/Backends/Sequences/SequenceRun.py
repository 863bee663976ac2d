"""Every frame of a sequence (4D) through any backend: one segmentation per frame, kept as a segmentation sequence
(played with the input by a browser node), and a table of the structures' volumes per frame. No Qt.

    job = logic.startBackendOnSequence("nnunet", sequenceNode, modelFolders=[...], device="cpu")   # the panel polls it
    segmentations, table = logic.runBackendOnSequence("nnunet", sequenceNode, modelFolders=[...], cluster="local")

The input is a Slicer sequence node of scalar volumes (its frames in index order) or a list of volume nodes, all on
one grid. The options are checked on the first frame (with its memory estimate) before any frame runs. cluster=None
runs the frames one after the other on this computer; cluster="local" starts a Dask LocalCluster of `workers` worker
processes here for the run; a scheduler address sends them to that cluster (with the user's consent, TLS beyond this
machine, as for one case). See SequenceJob for progress, Cancel and what a cancelled run leaves (nothing).
"""

from .SequenceFrames import sequenceFrames
from .SequenceJob import SequenceJob
from .SequenceOutputs import browserFor, frameVolumes, volumeTable

DEFAULT_CLUSTER_FRAMES = 4  # frames in flight on a cluster reached by address (the scheduler queues the rest)
DEFAULT_LOCAL_WORKERS = 2


class SequenceRun:
    """Starts a SequenceJob; see the module docstring."""

    def __init__(self, scene, startBackend, estimateMemory, segmentStatistics, requireClusterConsent):
        """scene(): the MRML scene; startBackend(name, volume, segmentation, environment, **options) -> job;
        estimateMemory(name, volume, **options) -> MemoryEstimate (validates the options); segmentStatistics(
        segmentation, volume) -> rows with "segment" and "volumeMl"; requireClusterConsent(address, security) ->
        address."""
        self._scene = scene
        self._startBackend = startBackend
        self._estimateMemory = estimateMemory
        self._statistics = segmentStatistics
        self._requireClusterConsent = requireClusterConsent

    def start(self, name, sequence, outputName=None, environment="auto", cluster=None, clusterSecurity=None,
              workers=None, parallelFrames=None, onFrame=None, **options):
        frames = sequenceFrames(sequence)
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"workers must be a whole number of at least 1, not {workers!r}")
        if parallelFrames is not None and (not isinstance(parallelFrames, int) or parallelFrames < 1):
            raise ValueError(f"parallelFrames must be a whole number of at least 1, not {parallelFrames!r}")
        openCluster, parallel = None, 1
        if cluster == "local":
            workers = workers or min(DEFAULT_LOCAL_WORKERS, len(frames))
            openCluster = _localCluster(workers, options.get("device"))
            parallel = parallelFrames or workers
        elif cluster is not None:
            self._requireClusterConsent(cluster, clusterSecurity)
            parallel = parallelFrames or workers or DEFAULT_CLUSTER_FRAMES
        estimate = self._estimateMemory(name, frames[0][1], **options)  # bad options: ValueError, nothing made

        def startFrame(volume, address):
            where = {"cluster": address, "clusterSecurity": clusterSecurity} if address is not None else {}
            return self._startBackend(name, volume, None, environment, **where, **options)

        scene = self._scene()
        indexName = sequence.GetIndexName() if hasattr(sequence, "GetIndexName") else "frame"
        indexType = sequence.GetIndexType() if hasattr(sequence, "GetIndexType") else None
        inputSequence = None if isinstance(sequence, (list, tuple)) else sequence

        def finish(output, rows):
            table = volumeTable(scene, rows, f"{output.GetName()} volumes (mL)", output.GetIndexName())
            try:
                return table, browserFor(scene, inputSequence, output)
            except Exception:
                scene.RemoveNode(table)
                raise

        job = SequenceJob(f"{name} on {len(frames)} frames", scene, frames, startFrame,
                          lambda segmentation, volume: frameVolumes(self._statistics(segmentation, volume)), finish,
                          outputName or f"{name} segmentations", indexName or "frame", indexType, parallel,
                          openCluster, onFrame)
        job.memoryEstimate = estimate
        job.messages.extend(estimate.messages)
        return job

    def run(self, name, sequence, progressCallback=None, cancelEvent=None, outputName=None, **options):
        job = self.start(name, sequence, outputName, **options)
        return job.wait(progressCallback=progressCallback, cancelEvent=cancelEvent)


def _localCluster(workers, device):
    """openCluster() of a SequenceJob: a LocalCluster of `workers` processes (a GPU resource each on cuda)."""
    def openCluster():
        from ...Cluster import ClusterConnection

        resources = ClusterConnection.resourcesFor(device)
        cluster, client = ClusterConnection.openLocalCluster(workers, resources=resources or None)

        def close():
            client.close()
            cluster.close()

        return cluster.scheduler_address, close

    return openCluster
