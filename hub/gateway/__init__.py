"""``hub gateway``: a traffic-management reverse proxy (chaining, canary, shadowing behind a bulkhead)."""
