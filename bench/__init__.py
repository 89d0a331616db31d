"""Benchmarks (`python -m bench.run`). They measure the services, not the identity provider:
the stacks they start verify development tokens (BBI_AUTH_MODE=dev, devtools.dev_tokens)
unless the shell points them at an issuer."""
import os

if not os.environ.get("BBI_JWT_ISSUER", "").startswith(("http://", "https://")):
    os.environ.setdefault("BBI_AUTH_MODE", "dev")
    os.environ.setdefault("BBI_JWT_SECRET", "bench-only-hs256-secret-" + "b" * 16)
