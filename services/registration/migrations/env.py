from services.common.migrations import run_env
from services.registration.store import metadata

run_env(metadata)
