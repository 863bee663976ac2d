"""A DICOMweb server (a PACS such as Orthanc, dcm4chee, a cloud archive): series in (QIDO-RS search, WADO-RS
retrieve) and results out (STOW-RS store), with dicomweb-client.

    server = DicomWebServer("https://pacs.example.org/dicom-web", credentialsFile="~/.config/pacs.json")
    server.seriesOfStudy(studyUid); server.retrieveSeries(studyUid, seriesUid, folder); server.store([segPath])

Credentials come from a file or the environment, never from the command line, and are never logged or shown:
a JSON file {"username": ..., "password": ...} or {"token": ...} (a bearer token), or the variables
AISEGMENTATION_DICOMWEB_USERNAME / AISEGMENTATION_DICOMWEB_PASSWORD or AISEGMENTATION_DICOMWEB_TOKEN. Beyond this
machine only https:// is accepted (TLS verified, a CA bundle may be given); plain http only on loopback.
Sending images there needs the user's consent per address, as for clusters (Consent.py: the same store and file).

What a server answers is untrusted: each retrieved instance must belong to the study and series asked for, carry a
valid SOP instance UID, and the series stays within MAX_INSTANCES and MAX_SERIES_BYTES; each is written under a name
of ours. A server that is down, slow (TIMEOUT_SECONDS per request) or answers garbage raises ValueError naming the
server and the study/series, and nothing of that series is left on disk.
"""

import json
import logging
import os
import re
import shutil
import urllib.parse

from ..Addresses import isLoopbackHost, splitHttpUrl

TIMEOUT_SECONDS = 30.0
MAX_INSTANCES = 5000
MAX_SERIES_BYTES = 4 * 1024 ** 3
UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")
ENVIRONMENT = {"username": "AISEGMENTATION_DICOMWEB_USERNAME", "password": "AISEGMENTATION_DICOMWEB_PASSWORD",
               "token": "AISEGMENTATION_DICOMWEB_TOKEN"}


class DicomWebError(ValueError):
    """A DICOMweb exchange failed; the message names the server and what failed (never the credentials)."""


def requireUid(uid, what="UID"):
    text = str(uid or "").strip()
    if not UID_PATTERN.match(text) or len(text) > 64:
        raise ValueError(f"'{uid}' is not a DICOM {what} (digits and dots, at most 64 characters)")
    return text


def normalizeDicomWebUrl(url):
    """The service's base URL (no trailing slash); ValueError for anything but http(s)://host[:port][/path] with
    no credentials in it, and for plain http beyond loopback."""
    text = str(url or "").strip()
    parsed = splitHttpUrl(text, f"'{url}' is not a DICOMweb URL; use https://host[:port]/dicom-web (http only on "
                                f"this machine)", "Put the DICOMweb credentials in a file or the environment, not in "
                                "the URL")
    if parsed.scheme == "http" and not isLoopbackHost(parsed.hostname):
        raise ValueError(f"Refusing to exchange images with '{url}' over plain http: a DICOMweb server beyond this "
                         "machine must be reached over https")
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def serverOrigin(url):
    """scheme://host:port of a DICOMweb URL: what consent is given for."""
    parsed = urllib.parse.urlsplit(normalizeDicomWebUrl(url))
    return f"{parsed.scheme}://{parsed.netloc}"


def isLoopbackUrl(url):
    return isLoopbackHost(urllib.parse.urlsplit(normalizeDicomWebUrl(url)).hostname)


def readCredentials(credentialsFile=None, environ=None):
    """{"username", "password"} or {"token"} or {} from the file (JSON) or else the environment."""
    environ = os.environ if environ is None else environ
    if credentialsFile:
        path = os.path.expanduser(os.fspath(credentialsFile))
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except OSError as error:
            raise ValueError(f"Cannot read the DICOMweb credentials file '{path}': {error.strerror or error}") \
                from None
        except ValueError:
            raise ValueError(f"The DICOMweb credentials file '{path}' is not valid JSON (expected {{\"username\": "
                             "..., \"password\": ...}} or {\"token\": ...})") from None
        if not isinstance(data, dict) or not (data.get("token") or data.get("username")):
            raise ValueError(f"The DICOMweb credentials file '{path}' must hold {{\"username\": ..., \"password\": "
                             "...}} or {\"token\": ...}")
        return {key: str(data[key]) for key in ("username", "password", "token") if data.get(key) is not None}
    values = {key: environ.get(name) for key, name in ENVIRONMENT.items()}
    return {key: value for key, value in values.items() if value}


class DicomWebServer:
    """One DICOMweb service; see the module docstring. Credentials live only in this object's session."""

    def __init__(self, url, credentialsFile=None, timeout=TIMEOUT_SECONDS, caBundle=None):
        import requests
        from dicomweb_client.api import DICOMwebClient

        self.url = normalizeDicomWebUrl(url)
        credentials = readCredentials(credentialsFile)
        session = requests.Session()
        if credentials.get("token"):
            session.headers["Authorization"] = f"Bearer {credentials['token']}"
        elif credentials.get("username"):
            session.auth = (credentials["username"], credentials.get("password", ""))
        if caBundle:
            session.verify = os.fspath(caBundle)
        self._client = DICOMwebClient(self.url, session=session, timeout=float(timeout))
        self._client.set_http_retry_params(retry=False)  # a down server fails its case now, not after minutes

    def __repr__(self):
        return f"DicomWebServer({self.url!r})"

    def _call(self, what, function, *args, **kwargs):
        import requests

        try:
            return function(*args, **kwargs)
        except requests.exceptions.HTTPError as error:
            status = getattr(error.response, "status_code", None)
            hint = " (check the credentials)" if status in (401, 403) else ""
            raise DicomWebError(f"DICOMweb server {self.url}: {what} failed: HTTP {status}{hint}") from None
        except requests.exceptions.Timeout:
            raise DicomWebError(f"DICOMweb server {self.url}: {what} timed out (no answer within the time limit)") \
                from None
        except requests.exceptions.ConnectionError:
            raise DicomWebError(f"DICOMweb server {self.url}: {what} failed: the server cannot be reached (is it "
                                "running, and is the address right?)") from None
        except DicomWebError:
            raise
        except Exception as error:  # noqa: BLE001 - a garbage answer breaks the client's parsing in many ways
            logging.debug("DICOMweb %s failed", what, exc_info=True)
            raise DicomWebError(f"DICOMweb server {self.url}: {what} failed: the server's answer is not valid "
                                f"DICOMweb ({type(error).__name__})") from None

    def seriesOfStudy(self, studyUid, modalities=None):
        """The SeriesInstanceUIDs of a study (QIDO-RS), in the server's order; only those of the given modalities
        (e.g. ("CT", "MR", "PT")) when modalities is given."""
        studyUid = requireUid(studyUid, "StudyInstanceUID")
        results = self._call(f"searching the series of study {studyUid}", self._client.search_for_series,
                             study_instance_uid=studyUid, get_remaining=True)
        if not isinstance(results, list):
            raise DicomWebError(f"DICOMweb server {self.url}: the series search of study {studyUid} is not a list")
        uids = []
        for item in results:
            value = (item.get("0020000E") or {}).get("Value") if isinstance(item, dict) else None
            modality = ((item.get("00080060") or {}).get("Value") or [None])[0] if isinstance(item, dict) else None
            if value and (modalities is None or modality in modalities):
                uids.append(requireUid(value[0], "SeriesInstanceUID"))
        return uids

    def retrieveSeries(self, studyUid, seriesUid, folder):
        """Write the series' instances (WADO-RS) into folder (created; must not exist): returns folder. On any
        failure the folder is removed and ValueError says why."""
        studyUid, seriesUid = requireUid(studyUid, "StudyInstanceUID"), requireUid(seriesUid, "SeriesInstanceUID")
        folder = os.fspath(folder)
        os.makedirs(folder)
        try:
            count = self._call(f"retrieving series {seriesUid}", self._writeInstances, studyUid, seriesUid, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        logging.info("Retrieved %d instances of series %s from %s", count, seriesUid, self.url)
        return folder

    def _writeInstances(self, studyUid, seriesUid, folder):
        from pydicom.filebase import DicomBytesIO

        count, total = 0, 0
        # any transfer syntax: as stored (the server need not transcode, e.g. JPEG 2000 it cannot decode)
        for dataset in self._client.iter_series(studyUid, seriesUid, media_types=(("application/dicom", "*"),)):
            if str(dataset.get("StudyInstanceUID", "")) != studyUid or \
                    str(dataset.get("SeriesInstanceUID", "")) != seriesUid:
                raise DicomWebError(f"DICOMweb server {self.url}: an instance retrieved for series {seriesUid} "
                                    "belongs to another study or series")
            requireUid(dataset.get("SOPInstanceUID"), "SOPInstanceUID")
            count += 1
            if count > MAX_INSTANCES:
                raise DicomWebError(f"DICOMweb server {self.url}: series {seriesUid} has more than "
                                    f"{MAX_INSTANCES} instances")
            buffer = DicomBytesIO()
            dataset.save_as(buffer, enforce_file_format=True)
            data = buffer.getvalue()
            total += len(data)
            if total > MAX_SERIES_BYTES:
                raise DicomWebError(f"DICOMweb server {self.url}: series {seriesUid} is larger than "
                                    f"{MAX_SERIES_BYTES // 1024 ** 2} MiB")
            with open(os.path.join(folder, f"{count:05d}.dcm"), "xb") as file:
                file.write(data)
        if not count:
            raise DicomWebError(f"DICOMweb server {self.url}: series {seriesUid} of study {studyUid} holds no "
                                "instance")
        return count

    def store(self, paths):
        """Send DICOM files (STOW-RS); ValueError when the server refuses any of them."""
        import pydicom

        datasets = [pydicom.dcmread(os.fspath(path)) for path in paths]
        if not datasets:
            return
        response = self._call("storing " + ", ".join(os.path.basename(os.fspath(p)) for p in paths),
                              self._client.store_instances, datasets)
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            raise DicomWebError(f"DICOMweb server {self.url} refused {len(failed)} of the {len(datasets)} instances "
                                "stored")
        logging.info("Stored %d instances on %s", len(datasets), self.url)
