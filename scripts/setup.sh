#!/usr/bin/env bash
# Command 1 of the README: install everything a node needs, then run the main job.
#   apt packages (scripts/deps/apt-runtime.txt) → a venv in .venv → nodeagent (editable) →
#   `nodeagent` on PATH (/usr/local/bin) → `nodeagent doctor`.
# Pass --no-run to install only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
apt_install "$REPO/scripts/deps/apt-runtime.txt"
make_venv
install_project ""
link_scripts
[ "${1:-}" = "--no-run" ] && exit 0
say "nodeagent doctor"
exec nodeagent doctor
