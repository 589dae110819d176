"""File formats Penwright writes and reads (no Qt, no torch)."""
