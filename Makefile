# Two commands matter: `make demo` and `make test`. Both create (once) and reuse .venv/ at the repo root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup test demo lint unit integration template-check build bench-quick lock clean

# The stamp is rebuilt whenever the dependency pins or the project metadata change.
$(VENV)/.stamp-setup: pyproject.toml devtools/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "stocksync needs Python 3.11+"'
	@echo "make: setting up .venv/ (pip installs the pinned dependencies quietly; the first time takes a few minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' -e './devtools[plot]'
	touch $@

setup: $(VENV)/.stamp-setup

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check layers devtools functions tests bench tools
	$(BIN)/lint-imports

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

# Two tiers, both always run: the regular suite, then the scale and long end-to-end runs marked slow (issue 12).
# Each on every core, a test module per worker at a time (module-scoped stacks are deployed once per module).
PYTEST_PARALLEL ?= -n auto --dist loadscope
test: setup lint template-check build
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow"
	$(BIN)/pytest $(PYTEST_PARALLEL) -m slow
	$(MAKE) --no-print-directory bench-quick

# sam validate and cfn-lint see the SAM template; tools/check_template.py lints it translated, resource by resource
# (the only one of the three that catches a Ref to nothing, a bad GetAtt, a misspelled event property or runtime).
template-check: setup
	$(BIN)/sam validate --lint --template-file template.yaml
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python tools/check_template.py template.yaml

# sam build without Docker needs python3.13 on PATH; without it this says how to get it (and fails when CI=true).
build: setup
	SAM=$(BIN)/sam tools/build.sh

# The main job, locally: moto server with template.yaml deployed + the Commerce Platform simulator, a realistic day.
demo: setup
	$(BIN)/stocksync replay events/scenarios/demo_day.json

# Every benchmark at its --quick size, so they keep working; full sizes are run by hand (README, "Benchmarks").
bench-quick: setup
	@set -e; for bench in bench/*_bench.py; do echo "== $$bench --quick"; $(BIN)/python $$bench --quick; done

# After a lock, copy the runtime packages' new versions into layers/stocksync/requirements.txt (a unit test compares).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Pinned versions of every package `make` installs into .venv (regenerate with `make lock`).' > constraints.txt

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
