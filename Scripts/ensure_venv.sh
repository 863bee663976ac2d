#!/usr/bin/env bash
# aisegEnsureVenv VENV WANT REQUIREMENTS [pip-check]: create the virtual environment VENV when missing and install
# REQUIREMENTS into it when its stamp (VENV/.requirements.sha256) differs from WANT (a hash of what it is built
# from); with "pip-check", `pip check` must pass before the stamp is written. Sourced by Scripts/setup_env.sh (.venv)
# and AISegmentation/AISegmentationWeb/setup_env.sh (.venv-web).
aisegEnsureVenv() {
  local venv=$1 want=$2 requirements=$3 check=${4:-}
  if [ ! -x "$venv/bin/python" ]; then
    echo "Creating virtual environment $venv" >&2
    "${AISEGMENTATION_PYTHON:-python3}" -m venv "$venv"
  fi
  if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    echo "Installing the pinned requirements of $requirements into $venv (first run takes a minute)" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
    if [ "$check" = "pip-check" ]; then
      "$venv/bin/python" -m pip check >&2
    fi
    echo "$want" > "$venv/.requirements.sha256"
  fi
}
