# For a newcomer: `make demo`, `make test`, `make run`. Each creates .venv on first use.
# The newest python3.x on PATH that runs and is 3.11 or later (`make PYTHON=... ` to choose).
PYTHON ?= $(shell ls $$(echo "$$PATH" | tr ':' ' ') 2>/dev/null | grep -E '^python3\.[0-9]+$$' \
	| sort -t. -k2 -n -r -u | while read -r candidate; do \
	  "$$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  && { echo "$$candidate"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test test-fast lock check-config clean simulate

# The dependencies exactly as locked (requirements-dev.txt: versions and hashes), then the
# package itself, editable, with nothing left to resolve.
$(STAMP): pyproject.toml requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "sms-bridge needs Python 3.11 or later (python3.11, python3.12, ...) on PATH" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# After changing the dependencies in pyproject.toml: pin them again, with hashes.
LOCK := $(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet 'pip-tools>=7.4,<8'
	$(LOCK) --output-file requirements.txt pyproject.toml
	$(LOCK) --extra dev --output-file requirements-dev.txt pyproject.toml

run: $(STAMP)
	$(BIN)/python -m bot run

# The bridge at work with no Slack or 2Chat account: a guided tour, then a prompt.
demo: $(STAMP)
	$(BIN)/python -m demo

# Postgres first: without it the suite cannot pass, so say how to start it within seconds
# (and create the `test` database when the server has none) before the slow steps. Then
# two pytest processes side by side. One runs the tests that use Postgres (some cut every
# connection to it, so they run one at a time, in one process), then the rest of the
# directories in SHARE; the other runs all the other tests. Most of the suite waits on
# real app processes, not on the CPU, so this nearly halves the wall time; SHARE evens
# the two out (measured on a slow two-CPU host: 10.4 and 8.2 minutes with only tests/sms
# and tests/escalation in it; the simulation and dev-loop tests are about 70 s more).
SHARE := tests/sms tests/escalation tests/simulation tests/test_dev_loop.py
test: $(STAMP)
	$(BIN)/python -m tests.postgres_server
	$(BIN)/ruff check bot tests bench demo
	$(BIN)/ruff format --check bot tests bench demo
	$(BIN)/mypy
	@log=$$(mktemp); \
	{ $(BIN)/python -m pytest -m postgres -p no:cacheprovider; pg=$$?; \
	  $(BIN)/python -m pytest -m "not postgres" -p no:cacheprovider $(SHARE); share=$$?; \
	  test $$pg -eq 0 && test $$share -eq 0; } > $$log 2>&1 & other=$$!; \
	$(BIN)/python -m pytest -m "not postgres" $(addprefix --ignore=,$(SHARE)); rest=$$?; \
	wait $$other; others=$$?; \
	echo "--- the tests that use Postgres, then the rest of $(SHARE):"; cat $$log; rm -f $$log; \
	test $$rest -eq 0 && test $$others -eq 0

# The seeded fault simulation: SEEDS seeds from FIRST (default 1), or one SEED replayed.
SEEDS ?= 20
FIRST ?= 1
STEPS ?= 20
simulate: $(STAMP)
	$(BIN)/python -m tests.simulation --steps $(STEPS) $(if $(SEED),--seed $(SEED),--seeds $(SEEDS) --first $(FIRST))

# The inner loop: the tests that start no app process and need no Postgres (see tests/needs.py).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not app and not postgres"

check-config: $(STAMP)
	$(BIN)/python -m bot check-config

clean:
	rm -rf $(VENV) *.egg-info
