# The project's two commands (see README.md).
.PHONY: up test

ARGS ?= --source sample --watch SPY

up:  ## install, then run the whole service in one process (offline on the bundled sample by default)
	bash scripts/up.sh $(ARGS)

test:  ## install, then lint, type-check and run the whole test suite (SQLite + PostgreSQL)
	bash scripts/test.sh
