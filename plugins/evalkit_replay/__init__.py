"""Replay backend: evaluate saved model outputs offline (no model needed)."""
