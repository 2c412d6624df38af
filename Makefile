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
# make check's suites: the app, training, plugins, the collection's files and the rendered objects.
CHECK_SUITES ?= tests/app tests/training tests/plugins tests/collection tests/workloads

.PHONY: setup lock lint pytest sanity molecule test check collection changelog bench e2e clean

setup:
	scripts/setup.sh

# Re-lock requirements.txt and app/requirements.txt (hashes) after editing their .in files.
lock:
	scripts/lock-requirements.sh

lint:
	yamllint --strict .
	ansible-lint --profile production
	ruff check app plugins tests benchmarks
	ruff format --check app plugins tests benchmarks
	mypy app/src
	antsibull-changelog lint
	antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# Every suite, the end-to-end flow included; the ones that need a running appliance share one
# deployment and run last (tests/conftest.py). --durations: where the time goes, in every run.
pytest:
	pytest tests --durations=25

# The inner loop (under 5 minutes): lint, then the quick tests of the suites that need no running
# appliance: the app's units, training, plugins, the collection's files, the two rendered trees.
check: lint
	pytest -m "not slow" $(CHECK_SUITES)

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

# What CI runs (tests/stages.sh): lint, then sanity, molecule and every pytest suite, the appliance's
# suites with the stages that share nothing with them side by side; each stage says how long it took.
test:
	tests/stages.sh

bench:
	mkdir -p $(BUILD)
	python -m benchmarks

# The original demo alone (make pytest runs it too, on the shared appliance).
e2e:
	pytest tests/e2e

clean:
	rm -rf $(BUILD) .pytest_cache .mypy_cache .ruff_cache
