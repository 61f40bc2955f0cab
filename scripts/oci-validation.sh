#!/bin/sh
# Run the OCI project's runtime validation suite (opencontainers/runtime-tools: its validation/*
# programs and runtimetest) against runc and against `nodeagent runtime` from this tree, one test
# program at a time, and print pass/fail per program side by side.
#
# The suite is not part of this repository (and nothing built from it may be committed): build it
# yourself, outside the repository, then point SUITE at it. For example, on Debian 12:
#
#     apt-get install -y golang-go
#     git clone https://github.com/opencontainers/runtime-tools /tmp/rtt   # Debian packages 0105384
#     cd /tmp/rtt && git checkout 0105384 && mkdir -p bin
#     export GOTOOLCHAIN=local GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0  # runtimetest: static
#     go build -o bin/runtimetest ./cmd/runtimetest
#     for d in validation/*/; do n=$(basename $d); [ $n = util ] || go build -o bin/$n ./$d; done
#
# Usage (as root):  scripts/oci-validation.sh [-r runc|nodeagent|both] [-o OUTDIR] [PROGRAM...]
#   SUITE (default /tmp/rtt) holds bin/<program>, bin/runtimetest and rootfs-amd64.tar.gz.
#   PYTHON (default /work/main/.venv/bin/python, else python3) runs nodeagent from this tree.
#
# A program passes when it exits 0 and its TAP output has no "not ok" line.
#
# cgroups: several programs ask for an absolute cgroupsPath ("/test/..."). Every program runs in
# a cgroup namespace whose root is a cgroup of our own (<our cgroup>/oci-validation in each v1
# hierarchy), with the hierarchies mounted again in a private mount namespace, so that whatever
# either runtime creates lands under our own cgroup and never beside the host's.
set -u

REPO=$(cd "$(dirname "$0")/.." && pwd)
SUITE=${SUITE:-/tmp/rtt}
PYTHON=${PYTHON:-/work/main/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
WHICH=both
OUT=${OUT:-$(mktemp -d /tmp/oci-validation.XXXXXX)}
while getopts "r:o:" opt; do
    case $opt in
        r) WHICH=$OPTARG ;;
        o) OUT=$OPTARG ;;
        *) echo "usage: $0 [-r runc|nodeagent|both] [-o OUTDIR] [PROGRAM...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

if [ ! -x "$SUITE/bin/runtimetest" ] || [ ! -f "$SUITE/rootfs-amd64.tar.gz" ]; then
    echo "oci-validation: no suite at $SUITE (see the top of $0 to build it); skipped" >&2
    exit 0
fi
[ "$(id -u)" = 0 ] || { echo "oci-validation: run as root" >&2; exit 1; }
mkdir -p "$OUT"
# The programs copy ./runtimetest into each bundle.
[ -x "$SUITE/runtimetest" ] || cp "$SUITE/bin/runtimetest" "$SUITE/runtimetest"

# The runtime under test, as the suite calls it: RUNTIME=<program> with runc's command line.
WRAPPER="$OUT/nodeagent-runtime"
cat > "$WRAPPER" <<EOF
#!/bin/sh
PYTHONPATH=$REPO exec $PYTHON -m nodeagent runtime --root /run/nodeagent-oci-validation "\$@"
EOF
chmod +x "$WRAPPER"

# Our cgroup in each v1 hierarchy, plus a child of it for the suite.
SANDBOX=oci-validation
while IFS=: read -r _ ctrls path; do
    [ -n "$ctrls" ] || continue
    dir=/sys/fs/cgroup/$(echo "$ctrls" | sed 's/^name=//')
    [ -d "$dir" ] || continue
    mkdir -p "$dir$path/$SANDBOX"
    if [ -f "$dir$path/cpuset.cpus" ]; then  # a new cpuset is empty: no task may join it
        cat "$dir$path/cpuset.cpus" > "$dir$path/$SANDBOX/cpuset.cpus"
        cat "$dir$path/cpuset.mems" > "$dir$path/$SANDBOX/cpuset.mems"
    fi
done < /proc/self/cgroup

run_one() {  # run_one RUNTIME PROGRAM LOGFILE
    (
        cd "$SUITE" || exit 1
        # Join the sandbox cgroups, then a new cgroup namespace rooted there.
        while IFS=: read -r _ ctrls path; do
            [ -n "$ctrls" ] || continue
            dir=/sys/fs/cgroup/$(echo "$ctrls" | sed 's/^name=//')$path/$SANDBOX
            [ -d "$dir" ] && echo 0 > "$dir/cgroup.procs"
        done < /proc/self/cgroup
        RUNTIME=$1 exec unshare -C -m --propagation private sh -c '
            for d in /sys/fs/cgroup/*/; do
                name=$(basename "$d")
                umount "$d" || exit 1
                case $name in
                    unified) mount -t cgroup2 cgroup2 "$d" ;;
                    systemd) mount -t cgroup -o none,name=systemd cgroup "$d" ;;
                    *) mount -t cgroup -o "$name" cgroup "$d" ;;
                esac
            done
            exec timeout 120 "$0"' "bin/$2"
    ) > "$3" 2>&1
}

PROGRAMS=${*:-$(ls "$SUITE/bin" | grep -v '^runtimetest$')}
case $WHICH in
    both) RUNTIMES="runc nodeagent" ;;
    *) RUNTIMES=$WHICH ;;
esac
for rt in $RUNTIMES; do
    for p in $PROGRAMS; do
        log="$OUT/$rt.$p.tap"
        if [ "$rt" = runc ]; then run_one runc "$p" "$log"; else run_one "$WRAPPER" "$p" "$log"; fi
        code=$?
        if [ $code = 0 ] && ! grep -q '^not ok' "$log"; then r=pass; else r=FAIL; fi
        oks=$(grep -c '^ok' "$log"); noks=$(grep -c '^not ok' "$log")
        echo "$p $r $oks $noks" >> "$OUT/$rt.results"
    done
done

# Remove the sandbox cgroups, deepest first (whatever a runtime left in them goes too, if empty).
while IFS=: read -r _ ctrls path; do
    [ -n "$ctrls" ] || continue
    dir=/sys/fs/cgroup/$(echo "$ctrls" | sed 's/^name=//')$path/$SANDBOX
    [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null
done < /proc/self/cgroup

printf '%-40s' program; for rt in $RUNTIMES; do printf ' %-18s' "$rt"; done; echo
for p in $PROGRAMS; do
    printf '%-40s' "$p"
    for rt in $RUNTIMES; do
        set -- $(grep "^$p " "$OUT/$rt.results" | tail -1)
        printf ' %-18s' "$2 ($3/$(($3 + $4)))"
    done
    echo
done
printf '%-40s' "programs passed"
for rt in $RUNTIMES; do printf ' %-18s' "$(grep -c ' pass ' "$OUT/$rt.results")/$(wc -l < "$OUT/$rt.results")"; done
echo
echo "logs: $OUT"
