#!/usr/bin/env bash
# Command 1 of the README: install everything a node needs, then run the main job.
#   apt packages (scripts/deps/apt-runtime.txt) → a venv in .venv → nodeagent (editable) →
#   `nodeagent` and the real kubectl 1.37 on PATH (/usr/local/bin) → `nodeagent doctor` →
#   the all-in-one node (`nodeagent up`: a systemd unit where systemd runs, else `up -d`),
#   waiting until the node is Ready, then the two lines to use it.
# Pass --no-run to install only. Re-running is safe: a running node is left running.
# NODEAGENT_DATA_DIR (default /var/lib/nodeagent) and NODEAGENT_NETNS (run the node inside that
# network namespace, e.g. to try it without touching this machine's network) pass through.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need_root
apt_install "$REPO/scripts/deps/apt-runtime.txt"
make_venv
install_project ""
link_scripts
[ "${1:-}" = "--no-run" ] && exit 0
say "nodeagent doctor"
nodeagent doctor
DATA_DIR=${NODEAGENT_DATA_DIR:-/var/lib/nodeagent}
if [ -z "${NODEAGENT_NETNS:-}" ] && install_unit; then
    say "systemctl start nodeagent"
    systemctl start nodeagent.service
    exec nodeagent up -d --data-dir "$DATA_DIR"    # already running: waits for Ready, prints how to use it
fi
say "nodeagent up -d"
exec nodeagent up -d --data-dir "$DATA_DIR" ${NODEAGENT_NETNS:+--netns "$NODEAGENT_NETNS"}
