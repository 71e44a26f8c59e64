# One task runner. `make demo` runs the flagship agent; `make test` runs every test.
# Both install what they need first (uv, then the locked dependencies into .venv).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TASK ?= Our cloud bill spiked this week. Find out why, tell the owner, and stop anything idle that is burning money.

.PHONY: install demo review worker test test-fast lint format typecheck bench soak chaos clean server-stop replay-check

$(BIN)/python: pyproject.toml uv.lock
	$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

install: $(BIN)/python

# The demo reseeds its cloud inventory first, so the whole story (spike found, owner notified,
# idle cluster stopped) plays out every time.
demo: install
	$(BIN)/python -m examples.finops.inventory reset
	$(BIN)/python starter.py run finops "$(TASK)" --approve-as demo-operator

# The security review: four reviewers in parallel over a deliberately vulnerable sample app, a
# risk assessment, and a fix for the critical finding that its own tests verify in a sandbox,
# applied with your approval. It resets its working copy of the sample app first, like `demo`.
review: install
	$(BIN)/python -m examples.security_review --approve-as demo-operator

worker: install
	$(BIN)/python worker.py

test: install
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy

# The benchmarks compare against LangGraph, a bench-only dependency group.
# `make bench BENCH_ARGS=--quick` checks that the suite works in a few minutes.
bench: install
	$(PYTHON) -m uv sync --frozen --group bench --inexact --compile-bytecode --python $(PYTHON)
	$(BIN)/python -m bench $(BENCH_ARGS)

soak: install
	$(BIN)/python -m bench.soak_endurance

chaos: install
	$(BIN)/python -m bench.chaos

# Before a deploy: replay recent runs from the server (TEMPORAL_ADDRESS) against this checkout;
# fails on the first nondeterminism. `make replay-check REPLAY_ARGS="--since 30d --limit 200"`.
replay-check: install
	$(BIN)/python starter.py replay-check $(REPLAY_ARGS)

server-stop: install
	$(BIN)/python starter.py server stop

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
