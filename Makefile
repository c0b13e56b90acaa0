# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test test-fast lint check-config clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

# The bridge at work with no Slack or 2Chat account: a guided tour, then a prompt.
demo: $(STAMP)
	$(BIN)/python -m demo

# Postgres first: without it the suite cannot pass, so say how to start it within seconds
# (and create the `test` database when the server has none) before the slow steps.
test: $(STAMP)
	$(BIN)/python -m tests.postgres_server
	$(BIN)/ruff check bot tests bench demo
	$(BIN)/ruff format --check bot tests bench demo
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The inner loop: the tests that start no app process and need no Postgres (see tests/needs.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not app and not postgres"

check-config: $(STAMP)
	$(BIN)/python -m bot check-config

clean:
	rm -rf $(VENV) *.egg-info
