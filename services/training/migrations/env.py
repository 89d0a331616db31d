from services.common.db.migrations import run_env
from services.training.store import metadata

run_env(metadata)
