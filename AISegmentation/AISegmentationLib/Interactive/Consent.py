"""The user's consent to send images to an nnInteractive server on another machine, remembered per server origin
(scheme://host:port); the store and its file are shared with the Dask clusters (AISegmentationLib/Consent.py).
"""

from ..Consent import ConsentStore, defaultConsentFile, hasConsent  # noqa: F401 - this package's names for them
from .Errors import ConsentRequiredError


def requireConsent(settings, store, callback=None):
    """Return when images may go to settings' server; otherwise ask callback(origin) -> bool, or refuse."""
    if hasConsent(settings.origin, settings.isLocal, store, callback):
        return
    raise ConsentRequiredError(
        f"The image would be sent to {settings.origin}, a server on another machine, and you have not agreed to that "
        f"yet. Nothing was sent. Agree in the Interactive section, or from Python with "
        f"logic.allowInteractiveServer('{settings.origin}').")
