"""evalkit built-in plugin package evalkit_hf."""
