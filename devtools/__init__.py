"""Developer tooling: local servers, development tokens. Never imported by the services."""
