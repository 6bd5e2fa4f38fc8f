# gradvar: `make run` (main job) and `make test`; both create and use .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run lab test clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gradvar needs Python >= 3.11 (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## run: the main job: the default grid into results/<run_id>.parquet, then its summary
run: $(STAMP)
	$(BIN)/gradvar run

## lab: the PPDL lab's setups against exact values, with the batches timing
lab: $(STAMP)
	$(BIN)/gradvar lab --timing

## test: the test suite
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
