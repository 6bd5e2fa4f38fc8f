# gradvar: `make run` (main job) and `make test`; both create and use .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run lab report report-check paper dimension discrete blr categorical vae leaderboard test clean asv-quick asv-publish benchmarks compare figures

ASV_STAMP := $(VENV)/.asv-installed

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gradvar needs Python >= 3.11 (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## run: the main job: the default grid into results/<run_id>.parquet, its summary, and its
## report in reports/<run_id>/index.html (the path is printed last)
run: $(STAMP)
	$(BIN)/gradvar run --report

## report: the report of the newest results table (or RESULTS=path)
RESULTS ?= $(shell ls -t results/*.parquet 2>/dev/null | head -1)
report: $(STAMP)
	@test -n "$(RESULTS)" || { echo "no results/*.parquet yet: run 'make run' first"; exit 2; }
	$(BIN)/gradvar report $(RESULTS)

## report-check: render a report's index.html in headless Chromium into screenshot.png
## beside it, to look at it as a reader would (REPORT=reports/<run_id>; default: newest)
REPORT ?= $(shell ls -td reports/*/ 2>/dev/null | grep -v -e '/asv/' | head -1)
CHROMIUM := $(shell command -v chromium || command -v chromium-browser)
report-check:
	@test -n "$(REPORT)" || { echo "no reports/*/ yet: run 'make run' or 'make report' first"; exit 2; }
	@test -n "$(CHROMIUM)" || { echo "installing Debian's chromium (needs root)"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y chromium; }
	$$(command -v chromium || command -v chromium-browser) --headless --no-sandbox --disable-gpu \
	  --disable-background-networking --hide-scrollbars --force-device-scale-factor=1 \
	  --window-size=1500,$${HEIGHT:-9000} --screenshot=$(abspath $(REPORT))/screenshot.png \
	  file://$(abspath $(REPORT))/index.html
	@echo "look at $(REPORT)screenshot.png"

## paper: rerun bench/grids/paper.toml and rebuild the committed reports/paper/
paper: $(STAMP)
	$(BIN)/gradvar run --grid paper --out results
	$(BIN)/gradvar report $$(ls -t results/*-paper.parquet | head -1) --out reports/paper

## dimension: rerun bench/grids/dimension.toml and rebuild the committed reports/dimension/
dimension: $(STAMP)
	$(BIN)/gradvar run --grid dimension --out results
	$(BIN)/gradvar report $$(ls -t results/*-dimension.parquet | head -1) --out reports/dimension

## discrete: rerun bench/grids/discrete.toml (Bernoulli and categorical toys: ARM, DisARM,
## ARMS, double CV, REBAR fixed and learned, RELAX, relaxations, IWAE bounds with VIMCO,
## DReG, STL; ~6 min on 2 cores) and rebuild the committed reports/discrete/
discrete: $(STAMP)
	$(BIN)/gradvar run --grid discrete --out results
	$(BIN)/gradvar report $$(ls -t results/*-discrete.parquet | head -1) --out reports/discrete

## categorical: rerun bench/grids/categorical.toml (categorical latents: IndeCateR,
## Rao-Blackwellized SG, unordered set, ReinMax, Gumbel-Rao against REINFORCE/RLOO and the
## relaxations at flat and peaked logits; ~4 min on 2 cores) and rebuild reports/categorical/
categorical: $(STAMP)
	$(BIN)/gradvar run --grid categorical --out results
	$(BIN)/gradvar report $$(ls -t results/*-categorical.parquet | head -1) --out reports/categorical

## vae: rerun bench/grids/vae.toml (Bernoulli VAEs on digits: every discrete estimator along a
## DisARM training run against the exact gradient at D = 16, and 7 estimators x 3 seeds each
## training D = 64, linear and nonlinear; ~12 min on 2 cores) and rebuild reports/vae/
vae: $(STAMP)
	$(BIN)/gradvar run --grid vae --out results
	$(BIN)/gradvar report $$(ls -t results/*-vae.parquet | head -1) --out reports/vae

## leaderboard: gather the committed studies' reports (reports/*/leaderboard.json) into
## reports/leaderboard/ (after make paper, dimension, discrete, blr or vae)
leaderboard: $(STAMP)
	$(BIN)/gradvar leaderboard

## blr: rerun bench/grids/blr.toml (Bayesian logistic regression trained by SGD, every
## estimator measured at 8 checkpoints; Mohamed et al. 2020 §8) and rebuild reports/blr/
blr: $(STAMP)
	$(BIN)/gradvar run --grid blr --out results
	$(BIN)/gradvar report $$(ls -t results/*-blr.parquet | head -1) --out reports/blr

## lab: the PPDL lab's setups against exact values, with the batches timing
lab: $(STAMP)
	$(BIN)/gradvar lab --timing

## test: the test suite: all but the speed gates on two workers (pytest-xdist, one file per
## worker at a time), then the speed gates alone; `pytest` alone runs everything serially
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not serial"
	$(BIN)/python -m pytest -m serial

## benchmarks: the pytest-benchmark speed gates (ratios to the RNG floor); JSON in results/benchmarks/
benchmarks: $(STAMP)
	$(BIN)/python -m pytest tests/benchmarks -q

COMPARE_STAMP := $(VENV)/.compare-installed

$(COMPARE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[compare]'
	touch $(COMPARE_STAMP)

## compare: install the optional JAX extra (the figures' JAX column); not needed by run or test
compare: $(COMPARE_STAMP)

## figures: the README's performance table, both sides of each ratio timed in one process
figures: $(COMPARE_STAMP)
	$(BIN)/python -m bench.asv.figures

$(ASV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $(ASV_STAMP)

## asv-quick: every asv benchmark once in .venv: a smoke run (~5 min on 2 cores), nothing saved
asv-quick: $(ASV_STAMP)
	$(BIN)/asv machine --yes >/dev/null
	$(BIN)/asv run --python=same --quick --show-stderr

## asv-publish: HTML of the saved asv results (e.g. from `asv run HEAD~5..HEAD`) in reports/asv/
asv-publish: $(ASV_STAMP)
	$(BIN)/asv publish

clean:
	rm -rf $(VENV) .asv .pytest_cache build *.egg-info
