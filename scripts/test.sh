#!/usr/bin/env bash
# Run the whole test suite. On a fresh machine this first creates .venv and installs the project
# with its test extras (dev, plot, ray). Extra arguments go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/setup_env.sh
source "$root/scripts/setup_env.sh"
setup_env "dev,plot,ray"

echo "[test] ruff check"
ruff check dal_backdoor triggers tests scripts

echo "[test] pytest"
set +e
python -m pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "[test] pytest collected no tests: treating as a failure" >&2
    exit 1
fi
exit "$rc"
