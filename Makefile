# The project's commands (see README.md).
.PHONY: test

test:  ## install, then lint, type-check and run the whole test suite (SQLite + PostgreSQL)
	bash scripts/test.sh
