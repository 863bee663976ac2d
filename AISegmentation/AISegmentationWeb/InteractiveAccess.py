"""Which nnInteractive servers the page may reach, and whose API key goes where.

The operator chooses the addresses (``--interactive-server``, repeatable; default the usual local server) and may
give an API key (``--interactive-api-key-file`` or $AISEGMENTATION_INTERACTIVE_API_KEY) that belongs to the FIRST of
them only. A page user picks one of the allowed addresses; the operator's key is sent only to its own address; for
another one the user types their own key. An address outside the list is refused before anything is sent.
"""

from AISegmentationLib.Interactive.Connection import normalizeUrl

DEFAULT_INTERACTIVE_SERVER = "http://127.0.0.1:1527"
API_KEY_ENVIRONMENT = "AISEGMENTATION_INTERACTIVE_API_KEY"


class InteractiveServers:
    """The operator's allow-list and key (see the module docstring)."""

    def __init__(self, urls=None, operatorKey=None):
        urls = list(urls or [DEFAULT_INTERACTIVE_SERVER])
        self.urls = []
        for url in urls:
            try:
                normalized = normalizeUrl(url)
            except ValueError as error:
                raise ValueError(f"--interactive-server {url}: {error}") from None
            if normalized not in self.urls:
                self.urls.append(normalized)
        self.operatorKey = (operatorKey or "").strip() or None

    @property
    def keyOwner(self):
        """The address the operator's key belongs to (None without a key)."""
        return self.urls[0] if self.operatorKey else None

    def settingsFor(self, url, pageKey=None):
        """(normalized url, API key to send): ValueError for an address outside the list."""
        try:
            normalized = normalizeUrl((url or "").strip())
        except ValueError as error:
            raise ValueError(f"nnInteractive server '{url}': {error}") from None
        if normalized not in self.urls:
            raise ValueError(f"nnInteractive server {normalized} is not one this page may reach; the operator allows: "
                             + ", ".join(self.urls) + " (aisegmentation web --interactive-server)")
        pageKey = (pageKey or "").strip() or None
        if pageKey is not None:
            return normalized, pageKey
        return normalized, self.operatorKey if normalized == self.keyOwner else None


def readKeyFile(path):
    """The first line of a key file, stripped; ValueError when it cannot be read or is empty."""
    try:
        with open(path, encoding="utf-8") as file:
            key = file.readline().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"Cannot read the key file {path}: {error}") from None
    if not key:
        raise ValueError(f"The key file {path} is empty")
    return key
