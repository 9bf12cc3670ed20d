# Two commands matter: `make run` and `make test`. Each brings a fresh clone
# to done: virtual environments, trained bots, then the stack or the tests.

SHELL := /bin/bash
.DEFAULT_GOAL := help

BOTS := $(sort $(notdir $(wildcard bots/*)))
VENV := .venv
RASA_VENV := .venv-rasa
UV := $(VENV)/bin/uv
RASA := $(RASA_VENV)/bin/rasa
RASA_VERSION := 3.6.21
CHROMIUM := /usr/bin/chromium
# Every cache stays inside the repo, so `make clean-all` removes everything.
export UV_CACHE_DIR := $(CURDIR)/.cache/uv
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PYTHONUNBUFFERED := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export RASA_TELEMETRY_ENABLED := false
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: help run run-scaled test install train validate test-stories test-nlu test-python browser profile \
	scaled-packages lint bench nlu-report clean clean-all

help: ## Show this help
	@echo "Usage: make <target>"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

run: install train ## Set up, train what changed, start every bot, the desk and the chatroom
	@$(VENV)/bin/python -m handoff.run

run-scaled: install train scaled-packages ## The same on PostgreSQL and Redis, 2 chatroom workers, 2 replicas a bot
	@$(VENV)/bin/python -m handoff.run --scaled

test: install train browser scaled-packages validate test-stories test-nlu test-python ## Set up, train, and run every test

install: $(VENV)/.installed $(RASA_VENV)/.installed ## Create both virtual environments

# Python 3.11 side: chatroom, launcher, tests. uv is bootstrapped into it with pip.
$(VENV)/.installed: pyproject.toml
	@echo "installing the chatroom's environment ($(VENV))"
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: python3 must be 3.11 or newer for the chatroom"; exit 1; }
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	@$(VENV)/bin/python -m pip install -qq --disable-pip-version-check "uv>=0.4"
	@$(UV) pip install --quiet --python $(VENV)/bin/python -e ".[app,test]"
	@touch $@

# Python 3.10 side: Rasa and the action servers (Rasa 3.6 runs on 3.8-3.10 only).
$(RASA_VENV)/.installed: pyproject.toml $(VENV)/.installed
	@echo "installing Rasa's environment ($(RASA_VENV))"
	@py=$$(scripts/find-python310) || exit 1; \
	  test -x $(RASA_VENV)/bin/python || $(UV) venv --quiet --python "$$py" $(RASA_VENV)
	@$(UV) pip install --quiet --python $(RASA_VENV)/bin/python "rasa==$(RASA_VERSION)" "pytest>=8,<10" -e ".[bots]"
	@touch $@

# Rasa itself retrains part of a pipeline and writes a new model on every `rasa train`;
# scripts/train-bots compares the files' hashes with those stored next to the model instead.
train: install ## Train each bot whose data, domain or config changed (in parallel)
	@$(VENV)/bin/python scripts/train-bots --rasa-version $(RASA_VERSION)

validate: install ## Check each bot's data and domain (rasa data validate)
	@for bot in $(BOTS); do \
	  echo "== validating $$bot"; \
	  (cd bots/$$bot && ../../$(RASA) data validate --fail-on-warnings) || exit 1; \
	done

# End to end: each user message is classified by the bot's NLU, so a wrong
# intent or entity fails the story just like a wrong action.
test-stories: train ## Run each bot's conversation tests end to end; any prediction error fails
	@for bot in $(BOTS); do \
	  echo "== testing $$bot stories end to end"; \
	  (cd bots/$$bot && ../../$(RASA) test core --stories tests/test_stories.yml --e2e \
	     --model models --out results/stories --fail-on-prediction-errors --no-plot) || exit 1; \
	done

# tests/nlu_heldout.yml lives outside data/, so training never sees it.
test-nlu: train ## Score each bot's NLU on its held-out set; fails under the floors
	@for bot in $(BOTS); do \
	  echo "== held-out NLU of $$bot"; \
	  (cd bots/$$bot && ../../$(RASA) test nlu --nlu tests/nlu_heldout.yml \
	     --model models --out results/heldout --successes --no-plot --quiet) || exit 1; \
	done
	@$(VENV)/bin/python scripts/nlu-heldout --check

test-python: install train browser scaled-packages ## Run pytest: unit, real-stack integration and browser tests
	$(RASA_VENV)/bin/python -m pytest -p no:cacheprovider --confcutdir tests/rasa_side tests/rasa_side
	$(VENV)/bin/python -m pytest

# The browser test drives Debian's chromium; Playwright never downloads a browser.
browser:
	@test -x $(CHROMIUM) || { echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# run-scaled's databases come from Debian; its clusters live under var/, no system service is used.
scaled-packages:
	@{ ls /usr/lib/postgresql/*/bin/postgres && command -v redis-server; } >/dev/null 2>&1 || \
	  { echo "installing Debian's postgresql and redis-server"; \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) apt-get install -y -qq --no-install-recommends postgresql redis-server >/dev/null; }

nlu-report: install ## 5-fold cross-validation and held-out scores of each bot's NLU (minutes)
	@for bot in $(BOTS); do \
	  echo "== cross-validating $$bot (5 folds)"; \
	  (cd bots/$$bot && ../../$(RASA) test nlu --cross-validation --folds 5 --out results/nlu) || exit 1; \
	done
	@scripts/nlu-report
	@$(MAKE) --no-print-directory test-nlu

# Each bench starts its own stacks on free ports; REF=<git ref> measures that commit beside this one.
BENCH_REF = $(if $(REF),--ref $(REF))
bench: install train ## Print every benchmark, 3 runs each (slow: most of an hour; REF=main compares)
	$(VENV)/bin/python -m bench.latency $(BENCH_REF)
	$(VENV)/bin/python -m bench.handoff_latency $(BENCH_REF)
	$(VENV)/bin/python -m bench.floor $(BENCH_REF)
	$(VENV)/bin/python -m bench.load $(BENCH_REF)
	$(VENV)/bin/python -m bench.capacity $(BENCH_REF)
	$(VENV)/bin/python -m bench.streams $(BENCH_REF)
	$(VENV)/bin/python -m bench.turn_cost $(BENCH_REF)
	$(VENV)/bin/python -m bench.desk_store
	$(VENV)/bin/python -m bench.startup

# py-spy is a tool for this target only, so it stays out of the project's dependencies.
profile: install train ## Where a turn's CPU goes, per process and stage (py-spy; needs ptrace rights)
	@test -x $(VENV)/bin/py-spy || $(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python py-spy
	$(VENV)/bin/python -m bench.profile_turn

lint: install ## Check style with ruff
	$(VENV)/bin/ruff check handoff chatroom desk agents tests bots bench scripts/train-bots

clean: ## Remove trained models, test results and runtime state (var/)
	rm -rf var bots/*/models bots/*/results bots/*/.rasa

clean-all: clean ## Also remove the virtual environments and caches
	rm -rf $(VENV) $(RASA_VENV) .cache
