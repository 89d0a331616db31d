from services.common.db.migrations import run_env
from services.registration.store import metadata

run_env(metadata)
