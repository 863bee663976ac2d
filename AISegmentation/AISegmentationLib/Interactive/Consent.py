"""The user's consent to send images to an nnInteractive server on another machine, remembered per server.

A server on this machine (localhost, 127.0.0.0/8, ::1) needs no consent. For any other server the first image
upload is refused until the user agreed: through a callback that the panel shows as a dialog, or explicitly with
ConsentStore.allow(). Agreements are kept per server origin (scheme://host:port) in a small JSON file outside the
scene: $AISEGMENTATION_CONSENT_FILE, or ~/.config/AISegmentation/nninteractive-consent.json.
"""

import json
import logging
import os

from .Errors import ConsentRequiredError


def defaultConsentFile():
    return os.environ.get("AISEGMENTATION_CONSENT_FILE") or os.path.join(
        os.path.expanduser("~"), ".config", "AISegmentation", "nninteractive-consent.json")


class ConsentStore:
    """Server origins the user agreed to send images to. path=None keeps them in memory only."""

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
            logging.warning("Ignoring unreadable nnInteractive consent file %s: %s", self.path, error)
            return []

    def _save(self):
        if not self.path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        temporary = self.path + ".tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump({"allowedServers": sorted(self._origins)}, f, indent=1)
        os.replace(temporary, self.path)

    def isAllowed(self, origin):
        return origin in self._origins

    def allow(self, origin):
        self._origins.add(origin)
        self._save()
        logging.info("Images may now be sent to the nnInteractive server %s", origin)

    def revoke(self, origin):
        self._origins.discard(origin)
        self._save()

    def allowedServers(self):
        return sorted(self._origins)


def requireConsent(settings, store, callback=None):
    """Return when images may go to settings' server; otherwise ask callback(origin) -> bool, or refuse."""
    if settings.isLocal or store.isAllowed(settings.origin):
        return
    if callback is not None and callback(settings.origin):
        store.allow(settings.origin)
        return
    raise ConsentRequiredError(
        f"The image would be sent to {settings.origin}, a server on another machine, and you have not agreed to that "
        f"yet. Nothing was sent. Agree in the Interactive section, or from Python with "
        f"logic.allowInteractiveServer('{settings.origin}').")
