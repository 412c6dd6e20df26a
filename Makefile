# The two commands of the README, plus a few helpers.
#   make demo : set up .venv if needed, then train, evaluate and predict on built-in synthetic crowds
#   make test : set up .venv if needed, then every check CI runs
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-numerics install system-deps export clean-nbs outputs lab app docs docs-fast

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cltr-learn demo --out demo_out

# Browser tests need Debian's chromium (and docs need a local MathJax): install them when we can (root with
# apt-get); otherwise the browser tests skip and say why.
system-deps:
	@if [ -x /usr/bin/chromium ] && [ -d /usr/share/javascript/mathjax ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libjs-mathjax >/dev/null) \
	  || echo "system-deps: could not install chromium/libjs-mathjax; browser tests will be skipped"; \
	else echo "system-deps: not root or no apt-get; browser tests will be skipped"; fi

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q tests/test_sync.py
	$(BIN)/nbdev_test --n_workers 2
	env $(NUMERICS) $(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests --ignore=tests/test_sync.py

# The notebook tests again under other floating-point kernels: scalar ATen code instead of AVX-512, oneDNN and MKL
# held to AVX2, one thread. A test that only passed through the rounding of one CPU fails here (about 2 minutes;
# `make test` runs it too).
NUMERICS ?= ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1
test-numerics: $(STAMP)
	env $(NUMERICS) $(BIN)/nbdev_test --n_workers 2

export: $(STAMP)
	$(BIN)/nbdev_export

clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean

# Execute every notebook top to bottom and save it WITH its outputs (figures, tables), normalised so that a re-run
# changes nothing; fails, naming notebook and cell, on an output with a timing, an absolute path or a memory address.
# One notebook: .venv/bin/python tools/run_notebooks.py nbs/03_pos_enc.ipynb
outputs: $(STAMP)
	$(BIN)/python tools/run_notebooks.py

# Open the notebooks in JupyterLab, kernel = the project's .venv (root needs --allow-root)
lab: $(STAMP)
	JUPYTER_PREFER_ENV_PATH=1 $(BIN)/jupyter lab $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) nbs/

# Serve the interactive explorers (app/explorers.ipynb) with Voila on http://127.0.0.1:$(APP_PORT)/
APP_PORT ?= 8866
app: $(STAMP)
	$(BIN)/python tools/serve_app.py --port $(APP_PORT)

# Execute every notebook and build the HTML site in _site/ (index = the README with its curriculum table)
docs: $(STAMP) system-deps
	$(BIN)/python tools/build_docs.py --out _site

# The same site in seconds, from the outputs committed in the notebooks (nothing is executed)
docs-fast: $(STAMP) system-deps
	$(BIN)/python tools/build_docs.py --out _site --from-outputs
