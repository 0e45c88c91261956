# Two commands on a fresh machine: `make run` (a server) and `make test` (every test). Each one
# creates or refreshes the project's virtualenv (.venv; re-installed only when pyproject.toml
# changed), starts a Docker engine if none answers and builds or refreshes the sandbox images.
# Nothing is installed into the system Python. `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEBGME_STAMP := tests/webgme/node_modules/.installed
PISTON_STAMP := tests/piston/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: help venv install engine engine-stop test-engine images image compose postgres node \
	format lint typecheck test test-unit ab bench bench-dmoj bench-judgement run clean webgme \
	webgme-deps piston piston-deps chromium screenshots

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml client/pyproject.toml
	PYTHON=$(PYTHON) bash scripts/ensure-venv.sh $(VENV)
	touch $(STAMP)

venv: $(STAMP) ## create or refresh .venv (the package, editable, and its dev tools)

install: venv ## same as venv (kept for old habits)

engine: ## start a Docker engine if none answers, in its own session (installs docker.io when missing; JUDGE_RUNTIMES=runc,runsc adds gVisor)
	bash scripts/ensure-docker.sh

engine-stop: ## stop the engine `make engine` started (never one it did not start)
	bash scripts/engine-stop.sh

test-engine: ## the engine as the tests want it: runsc registered too, as CI does
	JUDGE_RUNTIMES=runc,runsc bash scripts/ensure-docker.sh

images: engine ## build or refresh every sandbox image (~1 s when nothing changed; no registry)
	bash images/build.sh

image: engine ## build one image: make image NAME=default
	bash images/build.sh $(NAME)

compose: engine ## install docker-compose when neither it nor the compose plugin is there
	bash scripts/ensure-compose.sh

postgres: ## install PostgreSQL's server programs (tests start throwaway clusters from them)
	bash scripts/ensure-postgres.sh

node: ## install Debian's nodejs and npm when missing (the WebGME and Piston clients' tests)
	bash scripts/ensure-node.sh

webgme-deps: ## npm ci: WebGME's clients for the executor tests (tests/webgme)
	npm ci --prefix tests/webgme --ignore-scripts --no-audit --no-fund
	touch $(WEBGME_STAMP)

webgme: node ## webgme-deps when package-lock.json changed
	@$(MAKE) --no-print-directory $(WEBGME_STAMP)

$(WEBGME_STAMP): tests/webgme/package-lock.json
	$(MAKE) --no-print-directory webgme-deps

piston-deps: ## npm ci: npm piston-client for the Piston door's client test (tests/piston)
	npm ci --prefix tests/piston --ignore-scripts --no-audit --no-fund
	touch $(PISTON_STAMP)

piston: node ## piston-deps when tests/piston/package-lock.json changed
	@$(MAKE) --no-print-directory $(PISTON_STAMP)

$(PISTON_STAMP): tests/piston/package-lock.json
	$(MAKE) --no-print-directory piston-deps

format: venv ## ruff format + autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

lint: venv ## ruff, mypy and the layer rules (import-linter contracts in pyproject.toml)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

typecheck: venv ## mypy only
	$(VENV)/bin/mypy

chromium: ## install Debian's chromium when missing (the playground's browser tests drive it)
	bash scripts/ensure-chromium.sh

screenshots: venv images chromium ## regenerate the playground's screenshots in docs/ (docs/playground.md)
	$(PY) -m tests.browser.screenshots docs/images

# JUDGE_TEST_NO_SKIPS: a test that skips fails instead, so nothing is left out silently
# (everything a test needs is installed above).
test: venv test-engine images compose postgres webgme piston chromium ## every test, sandbox tests on the real engine; a skip fails
	JUDGE_TEST_NO_SKIPS=1 $(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv postgres ## only the tests that need no Docker engine
	$(PY) -m pytest -m "not docker" $(PYTEST_ARGS)

ab: ## install ApacheBench when missing (bench.intake_bench drives the server with it; never CI)
	bash scripts/ensure-ab.sh

bench: venv images postgres ab ## benchmarks against raw Docker operations (sandbox, mission, service, intake, peers, runc vs runsc, nodes)
	$(PY) -m bench.sandbox_overhead
	$(PY) -m bench.mission_bench
	$(PY) -m bench.service_bench
	$(PY) -m bench.intake_bench
	$(PY) -m bench.side_by_side $(if $(wildcard $(BENCH_PEERS)/bin/python),--peers $(BENCH_PEERS))
	$(PY) -m bench.runtime_bench
	$(PY) -m bench.cluster_bench

BENCH_PEERS ?= build/bench-peers

bench-dmoj: ## the benchmarks' peers (DMOJ judge 4.1, epicbox) in a virtualenv of their own, $(BENCH_PEERS) (never CI)
	bash bench/dmoj/setup.sh $(BENCH_PEERS)

bench-judgement: venv images bench-dmoj ## the 20-case C judgement against DMOJ and the fresh-container floor, same run
	$(PY) -m bench.judgement --peers $(BENCH_PEERS)

run: venv images ## start the server (JUDGE_* settings from the environment)
	$(PY) -m service

clean: ## remove caches (and the virtualenv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info $(VENV)
