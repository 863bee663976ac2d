"""Cohorts from and back to a PACS over DICOMweb: the area logic the facade (Logic.py) composes.

    server = logic.connectDicomWeb("https://pacs.example.org/dicom-web", credentialsFile="pacs.json")
    result = CohortLogic(logic).runPacsCohort(server, "out/", studies=[studyUid], backend="nnunet", backendOptions={...})
    result.cohort.counts, result.transfers  # [{"case", "study", "series", "retrieveSeconds", "stored", "error"}]

Cases: every CT / MR / PET series of each study in `studies`, each "STUDY/SERIES" in `series`, and the rows of a
manifest whose image is ``dicomweb:STUDY/SERIES`` (the server is always the one given here: a manifest names UIDs,
never a server). Each series is retrieved (WADO-RS) into ``<output>/.pacs-retrieved/<case>/``, the cohort runs as
for DICOM folders (segment, compare, volumes; the case's DICOM SEG references its series), then each done case's
SEG (and, with storeRtStruct, an RTSTRUCT ``<case>_rtstruct.dcm`` written from its label map) is stored back
(STOW-RS). A series that cannot be retrieved or stored fails its transfer with the server's message and the other
cases go on; ``<output>/pacs.json`` lists every transfer. The retrieved series are removed at the end unless
keepRetrieved=True. Images go to a server beyond this machine only over https and after the user's consent for
its address (allowDicomWeb, the consent callback, or passing --dicomweb on the command line), as for clusters.
"""

import json
import logging
import os
import shutil
import time

from ..AtomicWrite import writeText
from ..Consent import ConsentStore, hasConsent
from .DicomWeb import DicomWebServer, isLoopbackUrl, requireUid, serverOrigin

DICOMWEB_PREFIX = "dicomweb:"
RETRIEVED_FOLDER = ".pacs-retrieved"
REPORT_NAME = "pacs.json"
IMAGE_MODALITIES = ("CT", "MR", "PT")


class PacsResult:
    """The cohort's CohortResult and the PACS transfers of its cases."""

    def __init__(self, cohort, transfers, server):
        self.cohort, self.transfers, self.server = cohort, transfers, server

    @property
    def failedTransfers(self):
        return [transfer for transfer in self.transfers if transfer.get("error")]


class PacsLogic:
    """DICOMweb consent, connection and PACS cohorts for the facade; see the module docstring."""

    def __init__(self):
        self._consentStore = None
        #: callback(origin) -> bool asked before the first image goes to a server beyond this machine
        self.dicomWebConsentCallback = None

    def _store(self):
        if self._consentStore is None:
            self._consentStore = ConsentStore()
        return self._consentStore

    def setDicomWebConsentStore(self, store):
        """ConsentStore(path), or ConsentStore(None) to keep agreements in memory only."""
        self._consentStore = store

    def allowDicomWeb(self, url):
        """Agree to exchange images with the DICOMweb server at url (remembered per origin); returns the origin."""
        origin = serverOrigin(url)
        self._store().allow(origin)
        return origin

    def revokeDicomWeb(self, url):
        self._store().revoke(serverOrigin(url))

    def connectDicomWeb(self, url, credentialsFile=None, timeout=None, caBundle=None):
        """A DicomWebServer, once its address is safe (https beyond loopback) and agreed to; ValueError before
        anything is sent otherwise."""
        origin = serverOrigin(url)
        callback = self.dicomWebConsentCallback
        if not hasConsent(origin, isLoopbackUrl(url), self._store(),
                          (lambda destination: bool(callback(destination))) if callback is not None else None):
            raise ValueError(f"Images would be exchanged with the DICOMweb server at {origin}, on another machine, "
                             f"and you have not agreed to that yet. Nothing was sent. Agree when the panel asks, "
                             f"from Python with logic.allowDicomWeb('{origin}'), or on the command line by passing "
                             "--dicomweb.")
        options = {"timeout": timeout} if timeout else {}
        return DicomWebServer(url, credentialsFile=credentialsFile, caBundle=caBundle, **options)

    def runPacsCohort(self, server, outputDir, studies=(), series=(), manifest=None, storeSeg=True,
                      storeRtStruct=False, keepRetrieved=False, runCohort=None, readManifest=None, **cohortOptions):
        """Retrieve, run the cohort (CohortLogic.runCohort's options), store back; returns a PacsResult.
        runCohort(cases, outputDir, **options) and readManifest(path) are the cohort's: call this as
        CohortLogic(logic).runPacsCohort(server, outputDir, ...), which passes them."""
        if runCohort is None or readManifest is None:
            raise ValueError("A PACS cohort runs through the cohort: CohortLogic(logic).runPacsCohort(server, ...)")
        if not isinstance(server, DicomWebServer):
            raise ValueError("Connect to the DICOMweb server first: server = logic.connectDicomWeb(url, ...)")
        if not outputDir:
            raise ValueError("No output folder given for the cohort")
        outputDir = os.path.abspath(os.fspath(outputDir))
        transfers, cases = [], []
        localCases = readManifest(manifest) if manifest else []
        for entry in localCases:
            image = entry["images"][0] if entry["images"] else ""
            if len(entry["images"]) == 1 and image.startswith(DICOMWEB_PREFIX):
                studyUid, seriesUid = _parsePacsReference(image, entry["where"])
                cases.append((dict(entry), studyUid, seriesUid))
        localCases = [entry for entry in localCases if all(entry is not c for c, _, _ in cases)]
        for text in series or ():
            studyUid, seriesUid = _parsePacsReference(DICOMWEB_PREFIX + str(text), f"--series {text}")
            cases.append((_case(seriesUid), studyUid, seriesUid))
        for studyUid in studies or ():
            studyUid = requireUid(studyUid, "StudyInstanceUID")
            try:
                found = server.seriesOfStudy(studyUid, IMAGE_MODALITIES)
            except ValueError as error:
                transfers.append({"case": None, "study": studyUid, "series": None, "error": str(error)})
                continue
            cases.extend((_case(seriesUid), studyUid, seriesUid) for seriesUid in found)
        if not cases and not localCases and not transfers:
            raise ValueError("No PACS series to run: give studies, series (STUDY/SERIES) or a manifest with "
                             f"{DICOMWEB_PREFIX}STUDY/SERIES images")
        retrievedRoot = os.path.join(outputDir, RETRIEVED_FOLDER)
        ready, pacsCases = [], {}
        try:
            for entry, studyUid, seriesUid in cases:
                transfer = {"case": entry["case"], "study": studyUid, "series": seriesUid, "error": None,
                            "stored": []}
                transfers.append(transfer)
                try:
                    entry["images"] = [self._retrieve(server, retrievedRoot, entry["case"], studyUid, seriesUid,
                                                      transfer)]
                except ValueError as error:
                    transfer["error"] = f"retrieving: {error}"
                    continue
                entry["dicom"] = True
                ready.append(entry)
                pacsCases[entry["case"]] = transfer
            result = runCohort(ready + localCases, outputDir, **cohortOptions) if ready or localCases \
                else None
            if result is not None and (storeSeg or storeRtStruct):
                self._storeResults(server, result, outputDir, pacsCases, storeSeg, storeRtStruct)
        finally:
            if not keepRetrieved:
                shutil.rmtree(retrievedRoot, ignore_errors=True)
            writeText(os.path.join(outputDir, REPORT_NAME),
                      json.dumps({"server": server.url, "transfers": transfers}, indent=1))
        return PacsResult(result, transfers, server.url)

    @staticmethod
    def _retrieve(server, root, caseId, studyUid, seriesUid, transfer):
        folder = os.path.join(root, caseId)
        if os.path.isdir(folder) and not os.path.islink(folder):
            shutil.rmtree(folder)  # an earlier run's retrieval, in our own folder
        os.makedirs(root, exist_ok=True)
        started = time.time()
        server.retrieveSeries(studyUid, seriesUid, folder)
        transfer["retrieveSeconds"] = round(time.time() - started, 3)
        return folder

    @staticmethod
    def _storeResults(server, result, outputDir, pacsCases, storeSeg, storeRtStruct):
        for record in result.records:
            transfer = pacsCases.get(record.get("case"))
            if transfer is None:
                continue
            transfer["caseSeconds"] = record.get("seconds")
            if record.get("status") != "done":
                transfer["error"] = f"case {record.get('status')}: {record.get('error')}"
                continue
            try:
                paths = _resultFiles(record, outputDir, transfer, storeSeg, storeRtStruct)
                started = time.time()
                server.store(paths)
                transfer["storeSeconds"] = round(time.time() - started, 3)
                transfer["stored"] = [os.path.relpath(path, outputDir) for path in paths]
            except ValueError as error:
                transfer["error"] = f"storing: {error}"


def _resultFiles(record, outputDir, transfer, storeSeg, storeRtStruct):
    outputs = record.get("outputs") or {}
    paths = []
    if storeSeg:
        if not outputs.get("dicomSeg"):
            reasons = [w for w in record.get("warnings") or [] if w.startswith("no DICOM SEG")]
            raise ValueError(reasons[0] if reasons else "the case wrote no DICOM SEG")
        paths.append(os.path.join(outputDir, outputs["dicomSeg"]))
    if storeRtStruct:
        from ..SegmentationIO import readLabelNames
        from .RtStruct import writeRtStruct

        labelmap = os.path.join(outputDir, outputs["labelmap"])
        folder = os.path.dirname(labelmap)
        paths.append(writeRtStruct(labelmap, readLabelNames(os.path.join(outputDir, outputs["labels"])),
                                   os.path.join(outputDir, RETRIEVED_FOLDER, record["case"]),
                                   os.path.join(folder, f"{record['case']}_rtstruct.dcm")))
    return paths


def _case(seriesUid):
    from ..Manifest import case

    return case(seriesUid, [], where=f"series {seriesUid}")


def _parsePacsReference(text, where):
    """(study UID, series UID) of "dicomweb:STUDY/SERIES"; ValueError naming where otherwise."""
    body = text[len(DICOMWEB_PREFIX):]
    parts = body.split("/")
    if len(parts) != 2:
        raise ValueError(f"{where}: '{text}' must name a series as {DICOMWEB_PREFIX}STUDY_UID/SERIES_UID")
    try:
        return requireUid(parts[0], "StudyInstanceUID"), requireUid(parts[1], "SeriesInstanceUID")
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def describeTransfers(result):
    """Lines for a summary: each failed transfer and the stored results."""
    lines = []
    for transfer in result.transfers:
        name = transfer.get("case") or f"study {transfer.get('study')}"
        if transfer.get("error"):
            lines.append(f"  PACS FAILED {name}: {transfer['error']}")
        elif transfer.get("stored"):
            lines.append(f"  PACS {name}: retrieved in {transfer.get('retrieveSeconds', 0):.1f} s, stored "
                         f"{', '.join(os.path.basename(p) for p in transfer['stored'])} in "
                         f"{transfer.get('storeSeconds', 0):.1f} s")
    logging.debug("PACS transfers: %s", result.transfers)
    return lines
