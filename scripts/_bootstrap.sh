# Shared by scripts/run, scripts/test and scripts/bench: make the virtualenv and system packages exist.
# Idempotent and fast when nothing changed: `uv sync --locked` makes .venv exactly what uv.lock says.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${EXT_VENV:-$ROOT/.venv}"
# Slow builds (toolchain-built sample components, compiled artifacts) are cached outside the clone so that
# CI's fresh clones and developers' checkouts share them.
export EXT_BUILD_CACHE="${EXT_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ext-runtime}"
mkdir -p "$EXT_BUILD_CACHE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# uv installs the virtualenv from uv.lock (exact versions and hashes of every package, runtime and dev).
# uv itself is pinned by hash in scripts/uv-requirements.txt and kept in the shared build cache.
UV_VERSION="$(sed -n 's/^uv==\([0-9.]*\).*/\1/p' "$ROOT/scripts/uv-requirements.txt")"
UV="$EXT_BUILD_CACHE/tools/uv-$UV_VERSION/bin/uv"
export UV_PYTHON_DOWNLOADS=never  # the machine's python3, never a downloaded interpreter

ensure_uv() {
    [ -x "$UV" ] && return 0
    local dir="$EXT_BUILD_CACHE/tools/uv-$UV_VERSION" tmp
    log "installing uv $UV_VERSION into $dir"
    mkdir -p "$EXT_BUILD_CACHE/tools"
    tmp="$(mktemp -d "$EXT_BUILD_CACHE/tools/.uv.XXXXXX")"
    python3 -m venv "$tmp"
    "$tmp/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
        -r "$ROOT/scripts/uv-requirements.txt" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    [ -x "$tmp/bin/uv" ] || { log "could not install uv $UV_VERSION"; rm -rf "$tmp"; return 1; }
    # bin/uv is a self-contained binary, so the finished directory can be renamed into place (atomic; a
    # concurrent bootstrap that lost the race drops its copy).
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
    [ -x "$UV" ]
}

ensure_venv() {
    ensure_uv
    # --locked: refuse to run when uv.lock does not match pyproject.toml (refresh it with `scripts/lock`).
    # Fast when nothing changed; exact: packages that are not in the lock are removed.
    UV_PROJECT_ENVIRONMENT="$VENV" "$UV" sync --locked --extra dev --python python3 --quiet
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

postgres_bindir() {
    # The directory of initdb/pg_ctl (Debian keeps them off PATH): $PG_BINDIR, pg_config's, or the newest one.
    local dir
    for dir in "${PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)" \
            $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -n -r); do
        [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
    done
    return 1
}

ensure_postgres() {
    # The tests start their own PostgreSQL server (tests/_postgres.py): install Debian's package when missing.
    postgres_bindir >/dev/null && return 0
    ensure_debian_packages initdb:postgresql
    postgres_bindir >/dev/null || { log "PostgreSQL binaries not found after installing postgresql"; return 1; }
}
