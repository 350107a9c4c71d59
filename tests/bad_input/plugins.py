"""Badly made third-party plugins, as one real distribution (``tests/plugin_dist.py``).

Each module is its own entry point (plugin) in the ``jaseci_like`` group; every one
must be reported as broken, by name and with the reason, while the others load.
The broken plugins that ``plugin_dist`` ships (an import that fails, a hook that
raises, a typo in a hook name...) are installed next to these.
"""

from __future__ import annotations

from tests.plugin_dist import Dist

PACKAGE = "jl_bad_input_plugins"

_SOURCES = {
    # A service name the registry cannot use (it is also the config section name).
    "bad_name": """
        from jaseci_like import CommonService, hookimpl


        class BadNameService(CommonService):
            name = "Bad-Name"


        @hookimpl
        def jaseci_like_services():
            return [BadNameService]
        """,
    # A config schema that is not a ServiceConfig.
    "bad_schema": """
        from jaseci_like import CommonService, hookimpl


        class BadSchemaService(CommonService):
            name = "bad_schema"
            config_schema = dict


        @hookimpl
        def jaseci_like_services():
            return [BadSchemaService]
        """,
    # Packaged defaults that the service's own schema refuses.
    "bad_defaults": """
        from jaseci_like import CommonService, hookimpl


        class BadDefaultsService(CommonService):
            name = "bad_defaults"
            default_config = {"enabled": "sometimes"}


        @hookimpl
        def jaseci_like_services():
            return [BadDefaultsService]
        """,
    # The services hook returns something that is not a list of classes.
    "not_a_list": """
        from jaseci_like import hookimpl


        @hookimpl
        def jaseci_like_services():
            return 42
        """,
    # A second service named like a built-in one.
    "second_db": """
        from jaseci_like import CommonService, hookimpl


        class SecondDbService(CommonService):
            name = "db"


        @hookimpl
        def jaseci_like_services():
            return [SecondDbService]
        """,
    # A task that cannot be called.
    "bad_task": """
        from jaseci_like import hookimpl


        @hookimpl
        def jaseci_like_tasks():
            return {"not_callable": 42}
        """,
    # A module that is not valid Python.
    "syntax_error": """
        def jaseci_like_services(:
            return []
        """,
    # A module that raises while it is imported.
    "raises_on_import": """
        raise RuntimeError("raises_on_import refuses to be imported")
        """,
}


def bad_input_plugins() -> Dist:
    """One distribution, one entry point per bad module above."""
    return Dist(
        name="jl-bad-input-plugins",
        package=PACKAGE,
        files={f"{name}.py": source for name, source in _SOURCES.items()},
        entry_points={name: f"{PACKAGE}.{name}" for name in _SOURCES},
    )
