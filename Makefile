# The project's verbs. `make setup` once (idempotent), then `make test` = exactly what CI runs.
SHELL := /bin/bash
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
# Build scratch (reports, screenshots, bench output): never committed.
BUILD ?= build

.PHONY: setup lock lint pytest molecule test bench e2e clean

setup:
	scripts/setup.sh

# Re-lock requirements.txt and app/requirements.txt (hashes) after editing their .in files.
lock:
	scripts/lock-requirements.sh

lint:
	yamllint --strict .
	ansible-lint --profile production
	ruff check app plugins tests benchmarks e2e
	ruff format --check app plugins tests benchmarks e2e
	mypy app/src

pytest:
	pytest tests

molecule:
	@set -e; for scenario in $$(ls molecule); do \
	  [ -f molecule/$$scenario/molecule.yml ] || continue; \
	  echo "==> molecule test -s $$scenario"; molecule test -s $$scenario; \
	done

test: lint pytest molecule

bench:
	mkdir -p $(BUILD)
	python -m benchmarks

e2e:
	mkdir -p $(BUILD)/e2e
	pytest -s e2e

clean:
	rm -rf $(BUILD) .pytest_cache .mypy_cache .ruff_cache
