# churnlens — the two commands of a fresh machine: `make demo` and `make test`.
# Both create .venv with the Python found as $(PYTHON) (3.11 or newer) and install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: venv venv-dev demo test lint bench clean mlflow-ui notebook

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "churnlens needs Python 3.11+; run make PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes; the stamp files record what was installed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed
venv-dev: $(VENV)/.installed-dev

## demo: simulate a loyalty program, validate it, train + register a model in MLflow, score a campaign list
demo: venv
	bash scripts/demo.sh $(DEMO)

## test: the whole test suite (what CI runs)
test: venv-dev
	$(BIN)/python -m pytest -q

## notebook: re-execute the walkthrough notebook in place, keeping its outputs (plots, cards) for readers
notebook: venv-dev
	$(BIN)/python scripts/run_notebook.py notebooks/01_walkthrough.ipynb

lint: venv-dev
	$(BIN)/ruff check churnlens tests benchmarks

mlflow-ui: venv
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf $(DEMO) mlflow.db mlartifacts mlruns
