"""The built-in services, each a plugin registered through the ``jaseci_like`` entry points."""
