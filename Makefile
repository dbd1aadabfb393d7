# renum-db: every target installs what it needs into ./.venv first.
PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
NPM_STAMP   := node_modules/.installed-stamp
PG_VERSIONS ?= 16 18
PYTEST_ARGS ?=
# `make test` also runs the suite once more on this version with every signed-in user's request
# made as a custom PostgREST role (RENUM_TEST_API_ROLE=custom; see tests/conftest.py). Empty: skip.
CUSTOM_ROLE_PG ?= 16
ROLLBACKS   := $(wildcard migrations/*.rollback.sql)
FORWARD     := $(filter-out $(ROLLBACKS),$(wildcard migrations/*.sql))

.DEFAULT_GOAL := help
.PHONY: help install npm-install types migrate rollback rollback-all status db-up db-down db-url test test-16 test-18 test-custom-role lint mypy lint-sql sql-check sql-sync schema schema-check bench clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo ""
	@echo "  Database: DATABASE_URL or SUPABASE_DB_URL; unset = embedded PostgreSQL (RENUM_PG_VERSION=16|18)."

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install renum_db with its dev tools

# The frontend contract (tests/test_frontend_types.py): postgres-meta's type generator, supabase-js
# and TypeScript, exactly as package-lock.json pins them.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(NPM_STAMP)

npm-install: $(NPM_STAMP) ## install the pinned npm tools (npm ci) for the TypeScript checks

types: $(STAMP) $(NPM_STAMP) ## regenerate types/database.types.ts from the migrated database (make migrate first)
	$(BIN)/python -m tests.typegen --write

migrate: $(STAMP) ## apply all migrations (starts the embedded Postgres if no URL is set)
	$(BIN)/renum-db migrate

rollback: $(STAMP) ## roll back the last migration (asks first if tenant data would go; YES=1 skips the question)
	$(BIN)/renum-db rollback $(if $(YES),--yes)

rollback-all: $(STAMP) ## roll back every migration (asks first if tenant data would go; YES=1 skips the question)
	$(BIN)/renum-db rollback --all $(if $(YES),--yes)

status: $(STAMP) ## show which migrations are applied
	$(BIN)/renum-db status

db-up: $(STAMP) ## start the embedded Postgres (no-op with DATABASE_URL)
	$(BIN)/renum-db db up

db-down: $(STAMP) ## stop the embedded Postgres
	$(BIN)/renum-db db down

db-url: $(STAMP) ## print the database URL in use
	@$(BIN)/renum-db db url

# pytest exits 5 when it collected no test: that is a failure here, like any non-zero status.
test: $(STAMP) $(NPM_STAMP) ## run the test suite on embedded PostgreSQL 16 and 18, then as a custom API role
	@set -e; for v in $(PG_VERSIONS); do \
	  echo "== pytest on embedded PostgreSQL $$v =="; \
	  RENUM_PG_VERSION=$$v $(BIN)/python -m pytest $(PYTEST_ARGS); \
	done; \
	if [ -n "$(CUSTOM_ROLE_PG)" ]; then \
	  echo "== pytest on embedded PostgreSQL $(CUSTOM_ROLE_PG), users as a custom API role =="; \
	  RENUM_TEST_API_ROLE=custom RENUM_PG_VERSION=$(CUSTOM_ROLE_PG) $(BIN)/python -m pytest $(PYTEST_ARGS); \
	fi

test-16: ## run the test suite on PostgreSQL 16 only
	@$(MAKE) --no-print-directory test PG_VERSIONS=16 CUSTOM_ROLE_PG=

test-18: ## run the test suite on PostgreSQL 18 only
	@$(MAKE) --no-print-directory test PG_VERSIONS=18 CUSTOM_ROLE_PG=

test-custom-role: ## run the test suite with every user request made as a custom API role (PG 16)
	@$(MAKE) --no-print-directory test PG_VERSIONS= CUSTOM_ROLE_PG=16

lint: $(STAMP) ## ruff, mypy --strict, squawk over migrations/, sql/ sources check (also .pre-commit-config.yaml)
	$(BIN)/ruff check renum_db tests bench
	$(BIN)/ruff format --check renum_db tests bench
	@$(MAKE) --no-print-directory mypy
	@$(MAKE) --no-print-directory lint-sql
	$(BIN)/renum-db sql check

mypy: $(STAMP) ## mypy --strict over renum_db and tests
	$(BIN)/mypy

# Rollbacks drop what their migration created (tables, functions, columns), by definition: the
# ban-drop-* rules do not apply.
lint-sql: $(STAMP) ## squawk over migrations/ (transactional, non-transactional, rollbacks)
	$(BIN)/squawk -c .squawk.toml $$(grep -L -e '-- transactional: false' $(FORWARD))
	$(BIN)/squawk -c .squawk.toml --no-assume-in-transaction $$(grep -l -e '-- transactional: false' $(FORWARD))
	$(BIN)/squawk -c .squawk.toml --exclude=ban-drop-table,ban-drop-function,ban-drop-schema,ban-drop-view,ban-drop-column \
	  $$(grep -L -e '-- transactional: false' $(ROLLBACKS))
	$(BIN)/squawk -c .squawk.toml --no-assume-in-transaction --exclude=ban-drop-table,ban-drop-function,ban-drop-schema,ban-drop-view,ban-drop-column \
	  $$(grep -l -e '-- transactional: false' $(ROLLBACKS))

sql-check: $(STAMP) ## check that migrations embed the current sql/ sources
	$(BIN)/renum-db sql check

sql-sync: $(STAMP) ## refresh the sql/ copies in FILES=migrations/NNNN...sql (unapplied ones only)
	$(BIN)/renum-db sql sync $(FILES)

# schema.sql is the PostgreSQL 16 dump of a throwaway database migrated on the embedded server.
schema: $(STAMP) ## regenerate schema.sql from the migration chain (review its diff with the migration)
	env -u DATABASE_URL -u SUPABASE_DB_URL RENUM_PG_VERSION=16 $(BIN)/renum-db schema --output schema.sql

schema-check: $(STAMP) ## exit 1 with a diff if schema.sql differs from what the chain builds
	env -u DATABASE_URL -u SUPABASE_DB_URL RENUM_PG_VERSION=16 $(BIN)/renum-db schema --check schema.sql

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

BENCH_SCALE ?= full
bench: $(BENCH_STAMP) ## benchmark retrieval (BENCH_SCALE=full|small|smoke; full writes bench/results.md, needs an idle machine)
	$(BIN)/python -m bench.run --scale $(BENCH_SCALE)

clean: ## stop the embedded Postgres and remove .venv and .renum
	-$(BIN)/renum-db db down
	rm -rf $(VENV) .renum .mypy_cache .ruff_cache .pytest_cache node_modules
