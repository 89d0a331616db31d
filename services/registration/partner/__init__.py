"""Partner platforms (marketplaces) reporting the merchants they onboarded, in bulk, with an API
key: api.py (the endpoint), handlers.py (use cases), items.py (parsing and validating a batch),
events.py (the batch's events)."""
