# Two commands for a new user: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: setup demo test lab lint bench compare-checkov system-deps clean help

help:
	@echo "make demo   - set up .venv and render the demo cluster's reports into reports/"
	@echo "make test   - set up .venv (and system packages when root) and run the whole suite"
	@echo "make lab    - start JupyterLab on notebooks/"
	@echo "make lint   - ruff"
	@echo "make bench  - run the benchmark scripts under benchmarks/"
	@echo "make compare-checkov [DIRS=...] - our audit verdicts vs checkov's (own virtualenv)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lab]'
	touch $(STAMP)

setup: $(STAMP)

DEMO_HISTORY := $(CURDIR)/reports/demo-history

# The operations KPIs need an audit trail: a demo one, in its own git repository
# under reports/ (rewritten each time, never history/prompts).
demo: setup
	$(BIN)/python -m aiops.kpis.demo $(DEMO_HISTORY) > /dev/null
	$(BIN)/aiops report all --source demo --out reports -p phr_store=$(DEMO_HISTORY)/history/prompts

system-deps:
	bash .ci/system-deps.sh

test: setup system-deps
	$(BIN)/ruff check aiops tests benchmarks
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests
	$(BIN)/python -m pytest -q --nbval-lax -p no:cacheprovider notebooks

lab: setup
	$(BIN)/jupyter lab notebooks/

lint: setup
	$(BIN)/ruff check aiops tests benchmarks

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

compare-checkov: setup
	$(BIN)/python benchmarks/compare_checkov.py $(DIRS)

clean:
	rm -rf $(VENV) reports/20* reports/index.html reports/demo-history .pytest_cache
