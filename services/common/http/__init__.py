"""The Flask app factory plumbing, problem errors, auth (JWKS), API docs, request guards."""
