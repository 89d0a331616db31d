from services.common.migrations import run_env
from services.campaign.store import metadata

run_env(metadata)
