# Two commands for operators and developers: `make demo` and `make test`.
# Each creates .venv and installs what it needs by itself, at the versions (and hashes)
# locked in uv.lock: requirements/dev.txt is its export for the suite, requirements/app.txt
# for servers and the container image. `make lock` updates them after pyproject.toml
# changes; `make lock-check` (CI) fails when they no longer match pyproject.toml.
PYTHON ?= python3
# pytest-xdist workers for `make unit`: the suite waits on daemons, servers and timeouts more
# than it computes, so two workers halve it on a 2-CPU machine. JOBS=0 runs it in one process.
JOBS ?= 2
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UV := $(BIN)/uv
EXPORT := $(UV) export --frozen --no-emit-project --format requirements-txt --quiet

.PHONY: demo test lint typecheck unit clean lock lock-check

$(STAMP): pyproject.toml setup.py uv.lock requirements/dev.txt requirements/uv.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	$(UV) pip install --quiet --python $(BIN)/python --compile-bytecode --require-hashes \
		-r requirements/dev.txt
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/svarinn-daemon demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict svarinn_daemon

unit: $(STAMP)
	$(BIN)/pytest -n $(JOBS) --dist loadfile

# Resolve pyproject.toml's ranges again (newest versions that fit) and export the lock.
lock: $(STAMP)
	$(UV) lock --upgrade
	$(EXPORT) --extra postgres -o requirements/app.txt
	$(EXPORT) --extra postgres --extra dev -o requirements/dev.txt
	$(UV) pip compile --quiet --universal --generate-hashes requirements/uv.in \
		-o requirements/uv.txt

lock-check: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider tests/deploy/test_lock.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
