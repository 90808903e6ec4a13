# shellcheck shell=bash
# Sourced by the README's two commands. Run from the repository root.

# ensure_tooling PREFIX: the pinned tooling (requirements/dev.txt) in .venv/, installed
# again only when that file changes, and .venv/bin first on PATH. PYTHON names the
# interpreter (3.11 or newer) when `python3` is not the one to use.
ensure_tooling() {
    local prefix=$1 python=${PYTHON:-python3}
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "$prefix: needs Python 3.11 or newer as 'python3' (or set PYTHON=/path/to/python)" >&2
        exit 2
    fi
    local stamp=.venv/.dev-requirements.sha256 want
    want=$(sha256sum requirements/dev.txt | cut -d' ' -f1)
    if [[ ! -x .venv/bin/nox || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
        echo "$prefix: installing pinned tooling into .venv/"
        "$python" -m venv .venv
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
        echo "$want" > "$stamp"
    fi
    PATH="$(pwd)/.venv/bin:$PATH"
    export PATH
}

# require_root PREFIX: the test-bed installs packages and may start dockerd.
require_root() {
    if [[ $(id -u) -ne 0 ]] && ! sudo -n true 2>/dev/null; then
        echo "$1: installing and starting Docker needs root or passwordless sudo" >&2
        exit 2
    fi
}
