# Entry points (README): `make run` runs the whole system locally; `make test` runs every test.
.PHONY: setup run test test-unit test-integration test-e2e test-faults test-security test-browser lint bench

setup:
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q -e '.[dev]'

run:
	scripts/run-local

# Everything: lint, then unit, integration (real Kafka + PostgreSQL), deploy checks, e2e,
# faults and security.
test: setup lint
	.venv/bin/pytest -q

test-unit:
	.venv/bin/pytest -q tests/unit

test-integration:
	.venv/bin/pytest -q tests/integration

test-e2e:
	.venv/bin/pytest -q tests/e2e

test-faults:
	.venv/bin/pytest -q tests/faults

test-security:
	.venv/bin/pytest -q tests/security

# The portal in Debian's Chromium (Playwright) through the real stack; screenshots in
# var/screenshots/, axe-core results in var/browser/axe.json.
test-browser:
	.venv/bin/pytest -q tests/browser

lint:
	.venv/bin/ruff check services tests bench
	.venv/bin/mypy services

bench:
	.venv/bin/python -m bench.run
