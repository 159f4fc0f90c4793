#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 interpreter and install bayes_unmix into it.
#   bash scripts/install.sh          # the package
#   bash scripts/install.sh --test   # the package and its test extras
set -euo pipefail
cd "$(dirname "$0")/.."

is_new_enough() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
  local cand v
  for cand in python3.13 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1 && is_new_enough "$cand"; then command -v "$cand"; return 0; fi
  done
  # pyenv shims only answer when a version is selected: ask pyenv for its installed 3.12+ directly
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9]|[2-9][0-9])(\.[0-9]+)?$' | sort -rV); do
      cand="$(pyenv root)/versions/$v/bin/python3"
      if [ -x "$cand" ] && is_new_enough "$cand"; then echo "$cand"; return 0; fi
    done
  fi
  return 1
}

python=$(find_python) || {
  echo "error: bayes_unmix needs Python >= 3.12; none found (tried python3.13, python3.12, python3 and pyenv)." >&2
  exit 1
}
echo "using $python ($("$python" --version 2>&1))"
[ -x .venv/bin/python ] && is_new_enough .venv/bin/python || "$python" -m venv --clear .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install --quiet -e ".[test]"
else
  .venv/bin/python -m pip install --quiet .
fi
echo "installed bayes_unmix into .venv"
