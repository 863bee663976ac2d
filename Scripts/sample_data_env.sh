#!/usr/bin/env bash
# Offline cache of the sample data: the workplace's shared copy, when present and nothing else is set. Sourced by
# setup_env.sh (.venv) and by `aisegmentation web` (.venv-web).
aisegDataRoot=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${AISEGMENTATION_DATA_DIR:-}" ] && [ -d "$aisegDataRoot/../shared/data/totalsegmentator-examples" ]; then
  export AISEGMENTATION_DATA_DIR="$(cd "$aisegDataRoot/../shared/data/totalsegmentator-examples" && pwd)"
fi
