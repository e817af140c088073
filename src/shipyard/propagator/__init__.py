"""shipyard propagator."""
