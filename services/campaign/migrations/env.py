from services.campaign.store import metadata
from services.common.db.migrations import run_env

run_env(metadata)
