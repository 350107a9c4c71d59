"""Layered configuration: sources, precedence, schemas and secret masking."""
