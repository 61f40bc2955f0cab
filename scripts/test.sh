#!/usr/bin/env bash
# Command 2 of the README: install what the tests need, then run the three tiers.
#
#   unit  no root, fakes only (run as an unprivileged user when we can, to prove it)
#   root  real namespaces, mounts, netns and the host's cgroups
#   vm    tests/harness/vmtier.py boots a virtme-ng VM on the distribution kernel (cgroup v2
#         unified) and runs `pytest -m vm` inside it
#
# Usage: scripts/test.sh [unit|root|vm ...] [-- extra pytest arguments]
# NODEAGENT_STRICT=1 (.ci/run sets it): a tier that cannot run fails instead of skipping.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
need_root
set -e
apt_install "$REPO/scripts/deps/apt-runtime.txt" "$REPO/scripts/deps/apt-test.txt"
make_venv
install_project test
link_scripts
set +e

tiers=() extra=()
while [ $# -gt 0 ]; do
    case $1 in
        unit|root|vm) tiers+=("$1") ;;
        --) shift; extra=("$@"); break ;;
        *) die "unknown tier '$1' (want unit, root or vm)" ;;
    esac
    shift
done
[ ${#tiers[@]} -gt 0 ] || tiers=(unit root vm)

cd "$REPO"
export PYTHONDONTWRITEBYTECODE=1
PYTEST=("$VENV/bin/python" -m pytest -p no:cacheprovider)

# Run the unit tier as `nobody` when nobody can read the checkout: a unit test that secretly needs
# root then fails here instead of passing by accident.
as_unprivileged() {
    if command -v setpriv >/dev/null &&
       setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$REPO/pyproject.toml" 2>/dev/null &&
       setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$VENV/bin/python" 2>/dev/null; then
        echo "(as uid 65534)" >&2
        HOME=/tmp setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
    else
        echo "(as root: uid 65534 cannot read $REPO)" >&2
        "$@"
    fi
}

# The unit tier in parallel (pytest-xdist). Much of its time is waiting — on API servers, kubectl,
# controllers' timers and leases — so two workers overlap well on 2 cores (measured: 4 workers on 2
# cores were no faster). Whole files go to one worker (--dist loadfile): a module-scoped fixture then
# starts one API server per file, not one per worker, and tests in a file keep their order.
# NODEAGENT_UNIT_WORKERS=0 runs it serially.
unit_workers=${NODEAGENT_UNIT_WORKERS:-$(( $(nproc) > 4 ? 4 : $(nproc) ))}
UNIT_PARALLEL=(-n "$unit_workers" --dist loadfile)

declare -A result
for tier in "${tiers[@]}"; do
    say "tier $tier"
    case $tier in
        unit) as_unprivileged "${PYTEST[@]}" -m unit "${UNIT_PARALLEL[@]}" "${extra[@]}" ;;
        root) "${PYTEST[@]}" -m root "${extra[@]}" ;;
        vm)   "$VENV/bin/python" tests/harness/vmtier.py -- "${extra[@]}" ;;
    esac
    rc=$?
    case $rc in
        0) result[$tier]=passed ;;
        5) result[$tier]="FAILED (pytest collected no tests)" ;;
        77) result[$tier]="SKIPPED (see the reason above)" ;;
        *) result[$tier]="FAILED (exit $rc)" ;;
    esac
done

say "summary"
status=0
for tier in "${tiers[@]}"; do
    printf '  %-5s %s\n' "$tier" "${result[$tier]}"
    case ${result[$tier]} in passed|SKIPPED*) ;; *) status=1 ;; esac
done
exit $status
