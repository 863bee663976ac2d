"""The base Python's pip configuration, translated for uv (which does not read pip's configuration).

Hospitals and this workplace configure pip (``pip.conf`` files, ``PIP_*`` variables): a mirror as index, extra
indexes, a local wheel folder (find-links), a constraints file, a certificate bundle, trusted hosts, a proxy. ``pip
config list`` run by the base Python prints all of them (files of every level and the environment, as
``section.key='value'``); :func:`uvEnvironment` turns them into uv's environment variables so that uv installs from
exactly where pip would. For ``pip install`` the ``:env:`` values win over ``install.``, which win over ``global.``.
pip searches every source for the best version; uv by default stops at the first index that has a package, so
``UV_INDEX_STRATEGY=unsafe-best-match`` restores pip's behaviour whenever more than one source is configured.
"""

import ast
import re

SECTIONS = ("global", "install", ":env:")  # increasing precedence
TRUE_VALUES = ("1", "true", "yes", "on")
# pip options holding several values -> (uv's environment variable, its separator)
LIST_OPTIONS = {"extra-index-url": ("UV_INDEX", " "), "find-links": ("UV_FIND_LINKS", ","),
                "constraint": ("UV_CONSTRAINT", " "), "trusted-host": ("UV_INSECURE_HOST", " ")}


def parsePipConfigList(text):
    """{option: value} from the output of ``pip config list`` (precedence applied; lists kept as strings)."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([^.=\s]+|:env:)\.([A-Za-z0-9_-]+)=(.*)$", line.strip())
        if not match or match.group(1) not in SECTIONS:
            continue
        section, key, raw = match.groups()
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        key = key.replace("_", "-").lower()
        if key == "timeout":
            key = "default-timeout"
        found.setdefault(key, {})[section] = str(value)
    return {key: next(values[section] for section in reversed(SECTIONS) if section in values)
            for key, values in found.items()}


def _items(value):
    return [item for item in re.split(r"\s+", value.strip()) if item]


def uvEnvironment(options, environ=None):
    """uv's environment variables for pip options (as parsePipConfigList returns them).

    environ: the environment uv will run in; a certificate or proxy already set there is kept.
    """
    environ = environ or {}
    variables = {}
    if options.get("index-url"):
        variables["UV_DEFAULT_INDEX"] = options["index-url"].strip()
    for option, (variable, separator) in LIST_OPTIONS.items():
        items = _items(options.get(option, ""))
        if items:
            variables[variable] = separator.join(items)
    if "UV_INDEX" in variables or "UV_FIND_LINKS" in variables:
        variables["UV_INDEX_STRATEGY"] = "unsafe-best-match"  # pick the best version across all sources, as pip
    if options.get("no-index", "").strip().lower() in TRUE_VALUES:
        variables["UV_NO_INDEX"] = "1"
    if options.get("cert"):
        variables["SSL_CERT_FILE"] = options["cert"].strip()
    if options.get("client-cert"):
        variables["SSL_CLIENT_CERT"] = options["client-cert"].strip()
    if options.get("proxy"):
        for name in ("HTTPS_PROXY", "HTTP_PROXY"):
            if not environ.get(name) and not environ.get(name.lower()):
                variables[name] = options["proxy"].strip()
    if options.get("default-timeout"):
        variables["UV_HTTP_TIMEOUT"] = str(int(float(options["default-timeout"])))
    return variables
