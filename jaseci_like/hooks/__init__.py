"""Hooks: where configuration globs are kept (memory, Redis, SQL)."""
