"""shipyard pulse."""
