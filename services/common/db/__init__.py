"""The engine, dialect helpers, the plumbing tables every migration creates, migrations."""
