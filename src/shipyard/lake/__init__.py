"""shipyard lake."""
