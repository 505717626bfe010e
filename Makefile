# Two commands for a fresh machine (see README):
#   make provision [INVENTORY=inventory/hosts.yml]   converge a fleet, or a local simulated Spark
#   make test                                        lint, unit tests, molecule scenarios, EE stage
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
INVENTORY ?=
LOCAL_SPARK ?= sparkfleet-spark-1
SCENARIOS ?= default checkmode upgrade fleet

.PHONY: provision test lint unit molecule ee testbed clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

testbed: $(VENV)/.installed
	$(BIN)/python tests/testbed/testbed.py up

provision: $(VENV)/.installed
ifeq ($(INVENTORY),)
	$(BIN)/python tests/testbed/testbed.py up
	$(BIN)/python tests/testbed/testbed.py spark up $(LOCAL_SPARK)
	ansible-playbook -i "$$($(BIN)/python tests/testbed/testbed.py inventory --ssh $(LOCAL_SPARK))" site.yml
else
	ansible-playbook -i $(INVENTORY) site.yml
endif

lint: $(VENV)/.installed
	yamllint --strict .
	ansible-lint
	ruff check src tests tools plugins bench
	mypy src tests/testbed tests/ee tools plugins bench

unit: $(VENV)/.installed
	pytest

molecule: testbed
	bash tests/molecule_timed.sh $(SCENARIOS)

# The execution environment, built and run through ansible-navigator as AWX would (tests/ee/stage.py).
ee: testbed
	$(BIN)/python tests/ee/stage.py

test: lint testbed unit molecule ee

clean:
	$(BIN)/python tests/testbed/testbed.py down --purge || true
	rm -rf $(VENV)
