# The two quick-start commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit e2e bench clean system-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-packages:
	bash tools/system-packages.sh

run: $(STAMP) system-packages
	$(BIN)/gateway serve apps_example/gateway.toml

lint: $(STAMP)
	$(BIN)/ruff check gateway adapters tests bench apps_example
	$(BIN)/ruff format --check gateway adapters tests bench apps_example
	$(BIN)/mypy

test: lint system-packages
	$(BIN)/pytest -q

bench: $(STAMP)
	bash bench/setup.sh
	$(BIN)/python -m bench.hello
	$(BIN)/python -m bench.pathsend
	$(BIN)/python -m bench.vhosts
	$(BIN)/python -m bench.static
	$(BIN)/python -m bench.wsgi
	$(BIN)/python -m bench.php

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
