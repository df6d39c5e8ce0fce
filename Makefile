# Every target bootstraps .venv on first use; nothing is installed globally.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench chaos clean fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tolk dev

# Two legs: the whole suite on SQLite, then the tests marked `pg` (listed in
# tests/pg_suite.py) on a PostgreSQL server the session starts and removes. Both always
# run; either failing fails the target, and so does one that collects nothing (pytest's
# exit code 5). Each leg runs its files on TEST_WORKERS processes (pytest-xdist), each
# with a stack of its own: most of a test is waiting on timers and the stack, so two
# share two cores well. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)
test: $(STAMP)
	$(BIN)/python -m pytest $(XDIST); sqlite=$$?; \
	TOLK_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(XDIST) -m pg; postgresql=$$?; \
	echo "make test: SQLite leg exit $$sqlite, PostgreSQL leg exit $$postgresql"; \
	test $$sqlite -eq 0 && test $$postgresql -eq 0

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: $(STAMP)
	$(BIN)/python -m bench.accept --write BENCHMARKS.md
	$(BIN)/python -m bench.progress --write BENCHMARKS.md
	$(BIN)/python -m bench.progress --rate 10 --llm-latency 2 --activities 6 --write BENCHMARKS.md
	$(BIN)/python -m bench.locked_keys --write BENCHMARKS.md
	$(BIN)/python -m bench.client --write BENCHMARKS.md
	$(BIN)/python -m bench.fairness --write BENCHMARKS.md
	$(BIN)/python -m bench.fanout --write BENCHMARKS.md

# Nothing accepted is lost: SIGKILL workers, the API and Temporal during a burst.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos --runs 3 --write BENCHMARKS.md

# Fuzz the API from its own /openapi.json on a stack of its own (tests/test_fuzz.py, longer
# than in `make test`): a new seed every run, printed; `make fuzz SEED=<n>` repeats one,
# EXAMPLES=<n> sets the examples per operation.
fuzz: $(STAMP)
	TOLK_FUZZ_SEED=$(or $(SEED),random) TOLK_FUZZ_EXAMPLES=$(or $(EXAMPLES),300) \
		$(BIN)/python -m pytest tests/test_fuzz.py -q -p no:cacheprovider

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
