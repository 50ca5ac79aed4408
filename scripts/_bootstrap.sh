# Shared by scripts/run, scripts/test and scripts/bench: make the virtualenv and system packages exist.
# Idempotent and fast when nothing changed: the venv is rebuilt only when pyproject.toml changes.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EXT_VENV:-$ROOT/.venv}"
# Slow builds (toolchain-built sample components, compiled artifacts) are cached outside the clone so that
# CI's fresh clones and developers' checkouts share them.
export EXT_BUILD_CACHE="${EXT_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ext-runtime}"
mkdir -p "$EXT_BUILD_CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
    local stamp="$VENV/.ext-runtime-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv at $VENV"
        python3 -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing ext-runtime[dev] into $VENV"
        "$VENV/bin/python" -m pip install -q --upgrade pip setuptools >/dev/null
        "$VENV/bin/python" -m pip install -q -e "$ROOT[dev]"
        echo "$want" > "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}

_apt_updated=0
ensure_debian_packages() {
    # ensure_debian_packages CMD:PACKAGE ... — installs PACKAGE when CMD is not on PATH.
    local missing=()
    local pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        log "missing Debian packages (${missing[*]}) and no root to install them"; return 1
    fi
    local SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if [ "$_apt_updated" -eq 0 ]; then
        log "apt-get update"; $SUDO apt-get update -qq >/dev/null; _apt_updated=1
    fi
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}
