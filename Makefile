# povdyn — the README's commands. Everything runs inside .venv, created on first use.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
# One BLAS thread per process: with 2 cores, OpenBLAS threads fighting each other make
# statsmodels fits many times slower. (Parallelism comes from worker processes instead.)
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
# pip on some machines warns about find-links folders it ignores; keep the output readable
PIPQ := 2>&1 | { grep -v "^WARNING: Location '" || true; }
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAW ?= data/raw
PROCESSED ?= data/processed
WORKERS ?= 2
PERIOD ?= latest
PYTEST_ARGS ?=
# test processes (pytest-xdist); whole test files go to one process, so module fixtures
# (demo registers, a shared report run) are built once per file. TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2

.PHONY: setup report demo ingest test browser lab bench lock clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip $(PIPQ)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]" $(PIPQ)
	$(BIN)/python -m ipykernel install --sys-prefix --name povdyn --display-name "povdyn (Python 3.11)" >/dev/null
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned package (only when pyproject changed)

demo: $(STAMP)  ## write the synthetic demo register into data/raw/ when it is empty
	@if [ -z "$$(ls -A $(RAW) 2>/dev/null | grep -v '^README.md$$')" ]; then \
		echo "data/raw/ is empty: writing the synthetic demo register"; \
		$(BIN)/povdyn demo --out $(RAW); \
	else echo "data/raw/ has data: using it"; fi

ingest: demo  ## validate, quarantine, pseudonymise raw files into data/processed/
	$(BIN)/povdyn ingest $(RAW) --out $(PROCESSED)

report: ingest  ## build everything and render the quarterly report under reports/
	$(BIN)/povdyn report --period $(PERIOD) --workers $(WORKERS) --data-dir $(PROCESSED) --out reports

test: $(STAMP) browser  ## run the test suite (benchmarks excluded)
	$(BIN)/python -m pytest -m "not benchmark" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

browser:  ## Debian chromium + chromedriver for the report page test (installed when missing)
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing chromium + chromium-driver (Debian packages) for the browser test"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "chromium missing: run 'sudo apt-get install chromium chromium-driver'"; exit 1; fi; \
	fi

lab: $(STAMP)  ## open JupyterLab on the project's kernel
	$(BIN)/jupyter lab --notebook-dir=notebooks $$(test "$$(id -u)" = 0 && echo --allow-root)

bench: $(STAMP)  ## scale benchmarks against a plain-pandas baseline (slow)
	$(BIN)/python benchmarks/run.py

lock:  ## regenerate requirements.lock from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^povdyn' > requirements.lock.new
	{ echo '# Full pinned tree, used as pip constraints by the Makefile. Regenerate: make lock'; cat requirements.lock.new; } > requirements.lock && rm requirements.lock.new

clean:  ## remove derived data, reports and the virtualenv
	rm -rf $(VENV) $(PROCESSED)/*.parquet $(PROCESSED)/*.csv reports/* spark-warehouse .pytest_cache
