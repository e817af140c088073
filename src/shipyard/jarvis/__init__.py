"""shipyard jarvis."""
