#!/usr/bin/env bash
# Creates or updates the web front end's virtual environment .venv-web/ (idempotent: reinstalls only when this
# folder's requirements.txt changed) and checks it with pip check. Sourced by Scripts/aisegmentation web; run by the
# web tests (DevTools/WebPage.py) when the environment is missing or outdated.
set -euo pipefail
aisegRoot=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
aisegWebVenv="${AISEGMENTATION_WEB_VENV:-$aisegRoot/.venv-web}"
aisegWebRequirements="$aisegRoot/AISegmentation/AISegmentationWeb/requirements.txt"
source "$aisegRoot/Scripts/ensure_venv.sh"
aisegEnsureVenv "$aisegWebVenv" "$(sha256sum "$aisegWebRequirements" | cut -d' ' -f1)" "$aisegWebRequirements" pip-check
