#!/usr/bin/env bash
# Creates or updates the headless virtual environment at .venv/ (idempotent: reinstalls only when the
# requirement files changed). Sourced by Scripts/aisegmentation and Scripts/run_tests.
set -euo pipefail
aisegRoot=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$aisegRoot/Scripts/ensure_venv.sh"
aisegEnsureVenv "$aisegRoot/.venv" \
  "$(cat "$aisegRoot"/Scripts/requirements-*.txt "$aisegRoot/AISegmentation/Resources/requirements.txt" \
    | sha256sum | cut -d' ' -f1)" \
  "$aisegRoot/Scripts/requirements-headless.txt"
source "$aisegRoot/Scripts/sample_data_env.sh"
