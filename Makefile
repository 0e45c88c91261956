# The dev loop: make install, make images, make test. `make help` lists every target.
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: help install engine images image format lint typecheck test test-unit bench run clean \
	webgme-deps

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-11s %s\n", $$1, $$2}'

install: ## install the package and its dev tools
	$(PYTHON) -m pip install -q -e '.[dev]'

engine: ## start a Docker engine if none answers (installs docker.io when missing)
	bash scripts/ensure-docker.sh

images: engine ## build every sandbox image (no registry; BASE_IMAGE=... to use one)
	bash images/build.sh

image: engine ## build one image: make image NAME=default
	bash images/build.sh $(NAME)

webgme-deps: ## npm ci: WebGME's clients for the executor tests (tests/webgme)
	npm ci --prefix tests/webgme --ignore-scripts --no-audit --no-fund

format: ## ruff format + autofix
	ruff format .
	ruff check --fix .

lint: ## ruff and mypy
	ruff format --check .
	ruff check .
	mypy

typecheck: ## mypy only
	mypy

test: ## every test, sandbox tests on the real engine (needs make images)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-unit: ## only the tests that need no Docker engine
	$(PYTHON) -m pytest -m "not docker" $(PYTEST_ARGS)

bench: ## benchmarks against raw Docker operations (sandbox, mission, service, intake, peers)
	$(PYTHON) -m bench.sandbox_overhead
	$(PYTHON) -m bench.mission_bench
	$(PYTHON) -m bench.service_bench
	$(PYTHON) -m bench.intake_bench
	$(PYTHON) -m bench.side_by_side $(if $(BENCH_VENV),--peers $(BENCH_VENV))

run: engine ## start the server (builds images when missing)
	@docker image inspect judge/default >/dev/null 2>&1 || bash images/build.sh
	$(PYTHON) -m service

clean: ## remove caches
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
