"""Helpers for host applications: ``fastapi`` (lifespan, typed dependencies) and
``wsgi`` (Flask or any WSGI app). Each imports its framework only when imported."""
