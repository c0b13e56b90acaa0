# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint check-config clean simulate

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m bot run

test: $(STAMP)
	$(BIN)/ruff check bot tests bench
	$(BIN)/ruff format --check bot tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

# The seeded fault simulation: SEEDS seeds from FIRST (default 1), or one SEED replayed.
SEEDS ?= 20
FIRST ?= 1
STEPS ?= 20
simulate: $(STAMP)
	$(BIN)/python -m tests.simulation --steps $(STEPS) $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))

check-config: $(STAMP)
	$(BIN)/python -m bot check-config

clean:
	rm -rf $(VENV) *.egg-info
