"""The local target: HAProxy in front of processes (or containers), state on disk."""
