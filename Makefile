# The two quick-start commands: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit e2e bench clean system-packages example-setup

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-packages:
	bash tools/system-packages.sh

# The Django example's database, static files and demo superuser (admin / gateway-demo); quick when done before.
example-setup: $(STAMP)
	$(BIN)/python tools/example-setup.py

run: $(STAMP) system-packages example-setup
	$(BIN)/gateway dev apps_example/gateway.toml

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
	$(BIN)/python -m bench.workers
	$(BIN)/python -m bench.isolation
	$(BIN)/python -m bench.metrics

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
