#!/usr/bin/env bash
# Creates or updates the headless virtual environment at .venv/ (idempotent: reinstalls only when the
# requirement files changed). Sourced by Scripts/aisegmentation and Scripts/run_tests.
set -euo pipefail
aisegRoot=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
aisegVenv="$aisegRoot/.venv"
aisegStamp="$aisegVenv/.requirements.sha256"
aisegWant=$(cat "$aisegRoot"/Scripts/requirements-*.txt "$aisegRoot/AISegmentation/Resources/requirements.txt" \
  | sha256sum | cut -d' ' -f1)
if [ ! -x "$aisegVenv/bin/python" ]; then
  echo "Creating virtual environment $aisegVenv" >&2
  "${AISEGMENTATION_PYTHON:-python3}" -m venv "$aisegVenv"
fi
if [ "$(cat "$aisegStamp" 2>/dev/null)" != "$aisegWant" ]; then
  echo "Installing pinned requirements into $aisegVenv (first run takes a minute)" >&2
  "$aisegVenv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$aisegRoot/Scripts/requirements-headless.txt" >&2
  echo "$aisegWant" > "$aisegStamp"
fi
source "$aisegRoot/Scripts/sample_data_env.sh"
