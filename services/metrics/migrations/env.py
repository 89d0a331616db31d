from services.common.db.migrations import run_env
from services.metrics.store import metadata

run_env(metadata)
