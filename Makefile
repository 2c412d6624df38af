# The project's verbs. `make setup` once (idempotent), then `make test` = exactly what CI runs.
SHELL := /bin/bash
VENV ?= .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
export ANSIBLE_ROLES_PATH := $(CURDIR)/roles
# Build scratch (reports, screenshots, bench output, the collection tarball): never committed.
BUILD ?= build
COLLECTION_TARBALL := $(BUILD)/edgeai-appliance-$(shell sed -n 's/^version: *//p' galaxy.yml).tar.gz

.PHONY: setup lock lint pytest sanity molecule test collection changelog bench e2e clean

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
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

pytest:
	pytest tests

molecule:
	@set -e; for scenario in $$(ls molecule); do \
	  [ -f molecule/$$scenario/molecule.yml ] || continue; \
	  echo "==> molecule test -s $$scenario"; molecule test -s $$scenario; \
	done

# The Galaxy tarball, its file list checked (what an installed collection needs, no junk).
collection:
	python tests/collection_tarball.py $(BUILD)

# ansible-test sanity on the tarball as it ships, on the venv's Python.
sanity: collection
	tests/ansible_test/sanity.sh $(COLLECTION_TARBALL)

# Folds changelogs/fragments into changelogs/changelog.yaml and CHANGELOG.rst for galaxy.yml's version.
changelog:
	antsibull-changelog release

test: lint sanity pytest molecule

bench:
	mkdir -p $(BUILD)
	python -m benchmarks

e2e:
	mkdir -p $(BUILD)/e2e
	pytest -s e2e

clean:
	rm -rf $(BUILD) .pytest_cache .mypy_cache .ruff_cache
