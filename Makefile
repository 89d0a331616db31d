# Minimal test entry point used by .ci/run; extend freely.
.PHONY: test
test:
	.venv/bin/pytest -q
