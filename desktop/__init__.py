"""Penwright's Qt desktop app. It talks to the engine only through the engine's public API."""
