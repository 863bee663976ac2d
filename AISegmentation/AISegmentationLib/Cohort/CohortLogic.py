"""Cohort runs: a client of the Logic, as the command line is (the facade does not compose it).

    from AISegmentationLib.Cohort.CohortLogic import CohortLogic
    cohort = CohortLogic(logic)
    result = cohort.runCohort("cohort.csv", "out/", steps=("segment", "compare", "volumes"), backend="nnunet",
                             backendOptions={"modelFolders": [model], "device": "cpu"})
    result.counts, result.outputs["report"], [r["error"] for r in result.failedCases]

By default the cases run on a new Dask LocalCluster on this computer (worker processes sized from the cores, the
memory and the backend's memory estimate for the first case); ``scheduler="tls://host:8786"`` with
``security=makeSecurity(ca, cert, key)`` runs them on an existing cluster (TLS unless the address is loopback; the
images go there only after consent per address, as for one case: ``logic.allowCluster(address)`` or the panel).
Workers need this package importable (PYTHONPATH) and the same backend environments (see README).
"""

import contextlib
import logging
import os

from . import CaseTask, CohortRunner
from .. import Manifest
from ..Cluster import ClusterConnection


class CohortLogic:
    """Cohort runs on a Logic (AISegmentationLogic); see the module docstring."""

    def __init__(self, logic):
        """logic: the facade whose loadVolume, estimateBackendMemory, backendOptions, scene and
        requireClusterConsent (TLS beyond loopback and the user's consent to send images there, as for one case)
        this uses; the workers make their own."""
        self.logic = logic
        self._requireClusterConsent = logic.ai.requireClusterConsent
        self._loadVolume = logic.loadVolume
        self._estimateBackendMemory = logic.estimateBackendMemory
        self._backendOptions = logic.backendOptions
        self._removeNode = lambda node: logic.scene.RemoveNode(node)

    def runPacsCohort(self, server, outputDir, **options):
        """A cohort of PACS series (Dicom/PacsLogic.py: retrieve, run, store back) through this cohort's runCohort;
        server: logic.connectDicomWeb(url, ...). Returns a PacsResult."""
        return self.logic.pacs.runPacsCohort(server, outputDir, runCohort=self.runCohort,
                                             readManifest=self.readCohortManifest, **options)

    @staticmethod
    def readCohortManifest(source):
        """The cases of a CSV manifest or a folder (see Manifest.py); ValueError when malformed."""
        return Manifest.readManifest(source)

    def runCohort(self, manifest, outputDir, steps=CaseTask.STEPS, backend=None, backendOptions=None,
                  scheduler=None, security=None, workers=None, environment="auto", force=False,
                  progressCallback=None, cancelEvent=None, dashboardCallback=None, match="auto", mapping=None):
        """Run a cohort (a manifest path, a folder or a list of Manifest.case dicts) into outputDir; returns a
        CohortRunner.CohortResult. steps: any of "segment", "compare", "volumes"; backend / backendOptions: the
        segment step's backend and options (validated here before anything runs; a case's own options override
        them); scheduler: a Dask scheduler address (None: a LocalCluster of `workers` processes); security:
        ClusterConnection.makeSecurity(...); force: redo finished cases; progressCallback(CohortRunner.Progress);
        cancelEvent: a threading.Event; dashboardCallback(url): told the Dask dashboard's address; match / mapping:
        how the compare step pairs structures (LabelMatching; the mapping is read here, sent to the workers)."""
        cases = manifest if isinstance(manifest, list) else self.readCohortManifest(manifest)
        Manifest.requireDistinctCaseIds(cases)
        steps = CaseTask.requireSteps(steps)
        cases = CaseTask.withCompareOptions(cases, steps, match, mapping)
        backendOptions = self._validateBackend(cases, steps, backend, backendOptions)
        gpuCases = self._gpuCases(cases, steps, backend, backendOptions)
        if gpuCases and not scheduler:
            requireLocalGpu(gpuCases)
        if scheduler:  # the images leave this computer only over TLS and after consent per address
            scheduler = self._requireClusterConsent(scheduler, security)
        if not outputDir:
            raise ValueError("No output folder given for the cohort")
        from ..AtomicWrite import requireWritableOutput

        requireWritableOutput(os.path.join(outputDir, CaseTask.RECORD_NAME))
        for case in cases:
            CaseTask.requireOwnCaseFolder(outputDir, case["case"])
        resources = ClusterConnection.resourcesFor("cuda") if gpuCases else {}
        memory = None if scheduler else self._memoryPerCase(cases, steps, backend, backendOptions)
        with ClusterConnection.openCluster(scheduler, security, workers, memory, resources or None) as client:
            dashboard = ClusterConnection.dashboardLink(client)
            logging.info("Dask dashboard: %s", dashboard)
            if dashboardCallback is not None:
                dashboardCallback(dashboard)
            result = CohortRunner.runCohort(client, cases, outputDir, steps, backend, backendOptions, environment,
                                            force, progressCallback, cancelEvent)
        if result.cancelled:  # a local cluster is closed now: none of its workers writes any more
            CohortRunner.adoptRecordsWrittenMeanwhile(result, cases, outputDir, result.started)
        result.dashboard = dashboard
        return result

    def _validateBackend(self, cases, steps, backend, backendOptions):
        """The command's backend options, checked against the backend's declarations (and each case's own)."""
        needsBackend = "segment" in steps and any(not case.get("prediction") for case in cases)
        if not needsBackend:
            return dict(backendOptions or {})
        if not backend:
            raise ValueError("The segment step needs a backend (e.g. backend='nnunet' with its options), or a "
                             "prediction for every case")
        from ..Backends.Options import validateOptions

        declarations = self._backendOptions(backend)
        for case in cases:
            if not case.get("prediction"):
                options = CaseTask.caseOptions(backendOptions, case, declarations, backend)  # perCase only
                try:
                    validateOptions(declarations, options, backend)
                except ValueError as error:
                    raise ValueError(f"Case '{case['case']}': {error}") from None
        return dict(backendOptions or {})

    @staticmethod
    def _gpuCases(cases, steps, backend, backendOptions):
        """The ids of the cases whose segment step asks for a CUDA device (the command's or their own)."""
        if "segment" not in steps or not backend:
            return []
        return [case["case"] for case in cases if not case.get("prediction") and ClusterConnection.resourcesFor(
            CaseTask.caseOptions(backendOptions, case).get("device"))]

    def _memoryPerCase(self, cases, steps, backend, backendOptions):
        """The backend's peak-memory estimate (bytes) for the first case to segment, or None."""
        if "segment" not in steps or not backend:
            return None
        case = next((c for c in cases if not c.get("prediction") and all(map(os.path.exists, c["images"]))), None)
        if case is None:
            return None
        volumes = []
        try:
            volumes = [self._loadVolume(path) for path in case["images"]]
            options = CaseTask.caseOptions(backendOptions, case)
            return int(self._estimateBackendMemory(backend, volumes, **options).peakBytes)
        except (ValueError, RuntimeError, OSError) as error:
            logging.info("No memory estimate for the cohort's workers: %s", error)
            return None
        finally:
            for node in volumes:
                with contextlib.suppress(Exception):
                    self._removeNode(node)


def requireLocalGpu(caseIds):
    """ValueError naming the cases when they ask for a CUDA device and this computer has no NVIDIA GPU (nvidia-smi
    finds none): on a local cluster no worker could take them, and the cohort would wait for ever."""
    from ..Backends.Environments.TorchSelection import nvidiaDriverVersion

    if nvidiaDriverVersion() is None:
        shown = ", ".join(f"'{caseId}'" for caseId in caseIds[:5]) + (" ..." if len(caseIds) > 5 else "")
        raise ValueError(f"{len(caseIds)} case(s) ({shown}) ask for device 'cuda', but this computer has no NVIDIA "
                         "GPU (nvidia-smi finds none), so no worker of a local cluster could run them: use device "
                         "cpu or auto, or a Dask scheduler whose workers declare a GPU (--resources \"GPU=1\")")
