# callstream — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=
# Installs the Debian packages named after it (the tests' tools, and wrk for the benchmarks).
APT_INSTALL := apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

.DEFAULT_GOAL := help
.PHONY: help setup lock tools image images image-test compose-test run test unit integration lint fmt bench stack-up stack-down stack-status clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# The locked versions (with hashes): requirements.lock is what the image runs,
# requirements-dev.lock adds the test and lint tools; `make lock` refreshes both.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

lock:  ## re-resolve requirements.lock and requirements-dev.lock from pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes \
	  --upgrade -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes \
	  --extra dev --extra stack --constraint requirements.lock --upgrade -o requirements-dev.lock

setup: $(STAMP)  ## create .venv and install callstream with its dev tools (idempotent)

# Tools the tests run that come from Debian: promtool (the alert rules' tests).
tools:  ## install the Debian tools the tests need (promtool, headless Chromium, Docker, compose, debootstrap), if missing
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(APT_INSTALL) $$missing >/dev/null; \
	fi

image: setup tools  ## build the service image on a Debian base made here (callstream:local)
	$(BIN)/callstream image build

images: setup tools  ## build the Kafka and S3 images (deploy/kafka, deploy/s3) that compose and the containers backend run
	$(BIN)/callstream image services

image-test: setup tools  ## build the image, then run every service from it and check what the manifests promise
	$(BIN)/callstream image test

compose-test: setup tools  ## run deploy/compose.yaml on images built here: healthy, traffic through, clean stop
	$(BIN)/callstream image compose

run: setup  ## the whole pipeline on the local stack with the simulator, live (ARGS="--duration 60")
	$(BIN)/callstream run --live-calls $(ARGS)

test: setup tools  ## the full suite: unit tests, then integration tests on real Kafka and S3
	$(BIN)/pytest $(PYTEST_ARGS)

unit: setup tools  ## unit tests only
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

integration: setup  ## integration tests only (starts the local stack when needed)
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

lint: setup  ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup  ## format and autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup  ## run every benchmark under bench/ and print its figures (installs wrk if missing)
	@command -v wrk >/dev/null || { echo "installing Debian package: wrk"; $(APT_INSTALL) wrk >/dev/null; }
	$(BIN)/python -m bench $(ARGS)

stack-up: setup  ## start local Kafka and S3
	$(BIN)/callstream stack up

stack-down: setup  ## stop local Kafka and S3
	$(BIN)/callstream stack down

stack-status: setup  ## what of the local stack runs
	$(BIN)/callstream stack status

clean:  ## stop the stack and remove .venv, .stack and caches
	-@test -x $(BIN)/callstream && $(BIN)/callstream stack down
	rm -rf $(VENV) .stack .mypy_cache .ruff_cache .pytest_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
