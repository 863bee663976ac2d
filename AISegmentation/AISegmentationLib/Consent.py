"""The user's consent to send images to another machine, remembered per destination.

A destination is a server origin (``https://host:port``, an nnInteractive server) or a Dask scheduler address
(``tls://host:port``). One on this machine needs no consent. For any other, the first image is refused until the user
agreed: through a callback that the panel shows as a dialog, or explicitly with ConsentStore.allow(). Agreements are
kept in a small JSON file outside the scene, shared by every part of AISegmentation that sends images:
$AISEGMENTATION_CONSENT_FILE, or ~/.config/AISegmentation/nninteractive-consent.json (its name from when only
nnInteractive servers needed it). Each change re-reads the file first, so two stores on one file lose nothing.
"""

import json
import logging
import os

from .AtomicWrite import writeText


def defaultConsentFile():
    return os.environ.get("AISEGMENTATION_CONSENT_FILE") or os.path.join(
        os.path.expanduser("~"), ".config", "AISegmentation", "nninteractive-consent.json")


class ConsentStore:
    """Destinations the user agreed to send images to. path=None keeps them in memory only."""

    def __init__(self, path="default"):
        self.path = defaultConsentFile() if path == "default" else path
        self._origins = set(self._load())

    def _load(self):
        if not self.path or not os.path.isfile(self.path):
            return []
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            return [str(origin) for origin in data.get("allowedServers", [])]
        except (OSError, ValueError, AttributeError) as error:
            logging.warning("Ignoring unreadable consent file %s: %s", self.path, error)
            return []

    def _refresh(self):
        if self.path:
            self._origins = set(self._load())

    def _save(self):
        if not self.path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        writeText(self.path, json.dumps({"allowedServers": sorted(self._origins)}, indent=1))

    def isAllowed(self, origin):
        self._refresh()
        return origin in self._origins

    def allow(self, origin):
        self._refresh()
        self._origins.add(origin)
        self._save()
        logging.info("Images may now be sent to %s", origin)

    def revoke(self, origin):
        self._refresh()
        self._origins.discard(origin)
        self._save()

    def allowedServers(self):
        self._refresh()
        return sorted(self._origins)


def hasConsent(destination, isLocal, store, callback=None):
    """True when images may go to destination: it is on this machine, the user agreed before, or callback(destination)
    agrees now (remembered in store). False otherwise: the caller refuses with its own clear error."""
    if isLocal or store.isAllowed(destination):
        return True
    if callback is not None and callback(destination):
        store.allow(destination)
        return True
    return False
