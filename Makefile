# Two commands do all the set-up:  `make demo` runs didchat, `make test` runs every test.
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test system

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/didchat demo

# Debian packages the tests drive: a real Chromium, and nginx as the load balancer in front of two nodes.
system:
	@command -v chromium >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nginx >/dev/null; }

test: $(STAMP) system
	$(BIN)/ruff check .
	$(BIN)/mypy gateway chat
	$(BIN)/lint-imports
	node --test tests/js/
	$(BIN)/python -m scenarios.schema --check
	$(BIN)/didchat scenario test scenarios/examples/*
	$(BIN)/python -m pytest -n 2 --dist worksteal $(PYTEST_ARGS)
