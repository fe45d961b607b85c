# One entry point for people and CI. Everything runs from the project's own .venv.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: install test test-unit test-fuzz test-faults lint docs up down run bench clean

$(STAMP): pyproject.toml
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## The whole suite against a real broker and Postgres, provisioned and stopped here.
test: $(STAMP) lint
	$(PYTHON) -m shared.devstack run -- $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

## Unit and contract tests only (no broker, no database).
test-unit: $(STAMP)
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit tests/contract

## The fuzz suite alone, harder: FUZZ_EXAMPLES examples per property (make test runs a few dozen).
FUZZ_EXAMPLES ?= 500
test-fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m shared.devstack run -- $(PYTHON) -m pytest -q -p no:cacheprovider tests/fuzz tests/integration/intake/test_api_properties.py $(PYTEST_ARGS)

## The pipeline under faults (issue 9): 20,000 reports while every service is killed, the broker
## frozen 20 s, PostgreSQL (embedded, ours) restarted and a consumer group rewound; then the
## audit's tally, printed and written to .devstack/faults-tally.json; fails if the audit does.
test-faults: $(STAMP)
	DEVSTACK_POSTGRES=embedded $(PYTHON) -m shared.devstack run -- \
		$(PYTHON) -m ops.faults --reports 20000 --freeze 20 --out .devstack/faults-tally.json $(FAULTS_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services ops

docs: $(STAMP)
	$(PYTHON) -m shared.asyncapi --write docs/asyncapi.json
	$(PYTHON) -m shared.openapi --write

## Start a broker and Postgres for local use; settings go to .env.local.
up: $(STAMP)
	$(PYTHON) -m shared.devstack up

down: $(STAMP)
	$(PYTHON) -m shared.devstack down

## The whole system with a simulated city and a live view, until Ctrl-C (CLOCK_SCALE=1200 by default).
run: $(STAMP)
	$(PYTHON) -m ops.stack

## Benchmarks print numbers and write bench/results/*.json (BENCH="intake dispatch" for some),
## then bench/results/SUMMARY.md; py-spy profiles the pipeline's busiest service.
bench: $(STAMP)
	$(PYTHON) -m shared.devstack run -- $(PYTHON) -m bench $(BENCH)

clean:
	rm -rf $(VENV) .devstack .env.local .pytest_cache .mypy_cache .ruff_cache
