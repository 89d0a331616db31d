# Entry points (README): `make run` runs the whole system locally; `make test` runs every test.
.PHONY: setup run run-prodlike test test-unit test-integration test-e2e test-faults test-security test-browser test-prodlike lint bench

setup:
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q -e '.[dev]'

run:
	scripts/run-local

# The production configuration on loopback: 3 Kafka nodes (replication 3, min ISR 2), nginx
# generated from the Ingress, Keycloak, PostgreSQL (a database per service), every process
# with the ConfigMap's variable names (tests/prodlike/stack.py).
run-prodlike: setup
	scripts/run-prodlike

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

# The production configuration under faults (RELIABILITY.md: Production configuration).
test-prodlike:
	.venv/bin/pytest -q tests/prodlike

# The portal in Debian's Chromium (Playwright) through the real stack; screenshots in
# var/screenshots/, axe-core results in var/browser/axe.json.
test-browser:
	.venv/bin/pytest -q tests/browser

lint:
	.venv/bin/ruff check services devtools tests bench
	.venv/bin/mypy services devtools

bench:
	.venv/bin/python -m bench.run
