#!/usr/bin/env bash
# Sourced by scripts/test.sh and scripts/reproduce.sh: create .venv when missing and install
# the project (editable) with the extras named in $1 (comma-separated, may be empty).
# On x86_64 Linux with Python 3.11, torch/torchvision are pinned through constraints.txt to the
# builds available offline; elsewhere pip resolves the ranges in pyproject.toml.
# Re-runs are cheap: the install is skipped while pyproject.toml and the extras are unchanged.

setup_env() {
    local extras="${1:-}"
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local venv="${DAL_BACKDOOR_VENV:-$root/.venv}"
    local python="${PYTHON:-python3}"

    if [ ! -x "$venv/bin/python" ]; then
        echo "[setup] creating virtual environment in $venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --upgrade pip
    fi

    local constraint_args=()
    local pyver arch
    pyver="$("$venv/bin/python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    arch="$(uname -m)"
    if [ "$arch" = "x86_64" ] && [ "$pyver" = "3.11" ] && [ "$(uname -s)" = "Linux" ]; then
        constraint_args=(-c "$root/constraints.txt")
    fi

    local spec="$root"
    [ -n "$extras" ] && spec="$root[$extras]"
    local stamp="$venv/.dal-backdoor-installed"
    local want
    want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -c1-16) $extras"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "[setup] installing dal-backdoor${extras:+[$extras]} into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "${constraint_args[@]}" -e "$spec"
        echo "$want" > "$stamp"
    fi
    export PATH="$venv/bin:$PATH"
    export VIRTUAL_ENV="$venv"
}
