# Two commands for a new user: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROMTOOL ?= promtool

.PHONY: configuration run test test-unit test-integration test-deploy bench bench-replay soak replay verify schemas openapi lint format constraints clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[dev]'
	touch $(STAMP)

WORKERS ?= 1
run: $(STAMP)  ## start the service (with an embedded broker unless OPTOUTS_KAFKA_BROKERS is set); WORKERS=N|auto
	$(BIN)/optouts run --workers $(WORKERS)

test: $(STAMP)  ## the whole suite (starts its own broker unless OPTOUTS_KAFKA_BROKERS is set)
	$(BIN)/python -m pytest

test-unit: $(STAMP)  ## the pure core only: no broker
	$(BIN)/python -m pytest tests/unit

test-integration: $(STAMP)  ## agents and integration tests, on a broker
	$(BIN)/python -m pytest tests/agents tests/integration

test-deploy: $(STAMP)  ## deploy/ checked offline: alert rules (promtool), dashboard, Kubernetes manifests
	$(BIN)/python -m pytest tests/deploy

bench: $(STAMP)  ## throughput, latency and memory of each mix (BENCH_ARGS="--baseline REF": against a commit)
	$(BIN)/optouts bench $(BENCH_ARGS)

bench-replay: $(STAMP)  ## replay logs of 1M and 4M events with 1, then 2 processes: wall time, speedup, peak RSS; then one killed part-way, resumed, verified (REPLAY_BENCH_ARGS)
	$(BIN)/optouts bench-replay $(REPLAY_BENCH_ARGS)

soak: $(STAMP)  ## chaos soak: kill, wipe, pause workers and stall the broker while events stream in; every list must be the log's fold (SOAK_ARGS)
	$(BIN)/optouts soak $(SOAK_ARGS)

replay: $(STAMP)  ## rebuild every list from the logs into a new generation and switch the workers to it
	$(BIN)/optouts replay $(REPLAY_ARGS)

verify: $(STAMP)  ## fold the logs offline; compare with the API, the store and sms-opt-outs
	$(BIN)/optouts verify $(VERIFY_ARGS)

schemas: $(STAMP)  ## write the JSON Schema of every topic's values to schemas/json/
	$(BIN)/python -m schemas.json_schemas

configuration: $(STAMP)  ## write docs/configuration.md from the Settings fields
	$(BIN)/python -m streams.settings_reference

openapi: $(STAMP)  ## write the OpenAPI 3.1 document of the HTTP API to docs/openapi.json
	$(BIN)/python -m streams.web.openapi

lint: $(STAMP)
	@command -v $(PROMTOOL) > /dev/null || { echo "make lint: promtool is missing; it comes with Debian's prometheus package: apt-get install -y prometheus" >&2; exit 1; }
	$(PROMTOOL) check rules deploy/prometheus/alerts.yml
	$(BIN)/ruff check schemas projections streams tests
	$(BIN)/ruff format --check schemas projections streams tests
	$(BIN)/mypy schemas projections streams
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format schemas projections streams tests
	$(BIN)/ruff check --fix schemas projections streams tests

constraints: $(STAMP)  ## re-pin constraints.txt from what is installed
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^sms-optouts' > constraints.txt

clean:
	rm -rf $(VENV) data test-output .pytest_cache .mypy_cache .ruff_cache
