"""evalkit's OpenAI-compatible API backend (``backend=api``).

Importing this package is cheap; aiohttp is imported when a run selects the backend.
See :mod:`evalkit_api.backend` for behaviour and design decisions.
"""
