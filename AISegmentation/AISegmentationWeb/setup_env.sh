#!/usr/bin/env bash
# Creates or updates the web front end's virtual environment .venv-web/ (idempotent: reinstalls only when this
# folder's requirements.txt changed) and checks it with pip check. Sourced by Scripts/aisegmentation web; run by the
# web tests (DevTools/WebPage.py) when the environment is missing or outdated.
set -euo pipefail
aisegRoot=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
aisegWebVenv="${AISEGMENTATION_WEB_VENV:-$aisegRoot/.venv-web}"
aisegWebStamp="$aisegWebVenv/.requirements.sha256"
aisegWebRequirements="$aisegRoot/AISegmentation/AISegmentationWeb/requirements.txt"
aisegWebWant=$(sha256sum "$aisegWebRequirements" | cut -d' ' -f1)
if [ ! -x "$aisegWebVenv/bin/python" ]; then
  echo "Creating virtual environment $aisegWebVenv" >&2
  "${AISEGMENTATION_PYTHON:-python3}" -m venv "$aisegWebVenv"
fi
if [ "$(cat "$aisegWebStamp" 2>/dev/null)" != "$aisegWebWant" ]; then
  echo "Installing the web front end's pinned requirements into $aisegWebVenv (first run takes a minute)" >&2
  "$aisegWebVenv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$aisegWebRequirements" >&2
  "$aisegWebVenv/bin/python" -m pip check >&2
  echo "$aisegWebWant" > "$aisegWebStamp"
fi
