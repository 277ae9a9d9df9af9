# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
SITE   ?= config/sites/demo.yaml
PKGS   := controller modes devices uploader

.PHONY: install run run-fast test lint services bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Simulator and daemon on the bundled demo site; everything is stored under ./var/.
run: $(STAMP)
	@echo "flux-edge is installed in $(VENV)/bin: run '. $(VENV)/bin/activate' (or use $(VENV)/bin/flux-edge) in another terminal"
	$(PY) -m controller demo --site $(SITE)

# The same on a clock 20x faster, from 15:45 site time today: the 16:00 peak comes within a minute.
SPEED ?= 20
START ?= 15:45
run-fast: $(STAMP)
	@echo "flux-edge is installed in $(VENV)/bin: run '. $(VENV)/bin/activate' (or use $(VENV)/bin/flux-edge) in another terminal"
	$(PY) -m controller demo --site $(SITE) --speed $(SPEED) --start $(START)

# Starts PostgreSQL and Mosquitto if they are not reachable, then runs every test.
test: $(STAMP) services
	$(PY) -m pytest -q

services:
	bash scripts/ensure-services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check $(PKGS) simulator tests bench
	$(VENV)/bin/mypy --strict $(PKGS)

bench: $(STAMP) services
	$(PY) -m pytest -q bench

docs: $(STAMP)
	$(PY) scripts/gen_example_sites.py
	$(PY) scripts/gen_config_reference.py
	$(PY) scripts/gen_dashboards.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
