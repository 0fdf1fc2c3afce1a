#!/usr/bin/env bash
# `sam build` without a container (no Docker needed): it builds with the functions' runtime, python3.13, found on
# PATH. Without it, say so and how to get it; that is a failure in CI (CI=true), a notice elsewhere, so a
# contributor without Python 3.13 can still run `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=python3.13
if ! "$runtime" --version >/dev/null 2>&1; then
  {
    echo "sam build skipped: $runtime is not on PATH (sam build without Docker needs the functions' runtime)."
    if command -v pyenv >/dev/null 2>&1 && pyenv versions --bare | grep -q '^3\.13\.'; then
      newest=$(pyenv versions --bare | grep '^3\.13\.' | sort -V | tail -n 1)
      echo "  pyenv has it: export PYENV_VERSION=\$(pyenv version-name):$newest"
    else
      echo "  Install Python 3.13 (python.org, your package manager, or 'pyenv install 3.13'), then re-run."
    fi
  } >&2
  if [[ "${CI:-}" == "true" ]]; then
    echo "CI=true: a missing $runtime fails the build." >&2
    exit 1
  fi
  exit 0
fi

started=$SECONDS
echo "sam build with $("$runtime" --version) ($(command -v "$runtime"))"
"${SAM:-.venv/bin/sam}" build --template-file template.yaml
layer=.aws-sam/build/StockSyncLayer/python/stocksync
if [[ ! -f "$layer/__init__.py" ]]; then
  echo "sam build finished but $layer/__init__.py is missing: the layer would ship without the package." >&2
  exit 1
fi
"${PYTHON:-.venv/bin/python}" tools/check_layer.py "$(dirname "$layer")"
echo "sam build took $((SECONDS - started)) s"
