"""Globs, layered configuration, environment parsing, secret masking and ConfigApi.

Everything here runs in process against the real classes: a ``MemoryHook``, a
``Runtime`` with an in-code plugin (a service and a profile), and ``ConfigApi``.
The same behaviour seen through the command line is in ``test_cli.py``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from jaseci_like import (
    CommonService,
    ConfigError,
    GlobError,
    MemoryHook,
    MetaService,
    Runtime,
    ServiceConfig,
    ServiceStartError,
    hookimpl,
)
from jaseci_like.config.layers import ConfigLayers
from jaseci_like.config.secrets import MASK, is_secret_key, mask, redact_url
from jaseci_like.config_api import ConfigApi

SECRET = "hunter2-918273"
SECRET_NUMBER = 918273645
SECRET_URL = f"postgres://bob:{SECRET}@db.example:5432/app"


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size: int = Field(default=1, ge=1)
    rate: float = 1.0


class LayeredConfig(ServiceConfig):
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    e: int = 0
    tags: list[str] = Field(default_factory=list)
    limits: Limits = Limits()
    password: str = ""
    dsn: str = "sqlite://"


class LayeredService(CommonService):
    """A service that only has configuration; every key has a packaged default of 1."""

    name = "layered"
    config_schema = LayeredConfig
    default_config = MappingProxyType(
        {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "limits": {"size": 1, "rate": 1.0}}
    )

    def run(self, hook: MemoryHook | None = None) -> None:
        self.app = dict(self.config)


class LeakyService(CommonService):
    """Fails to start with a URL holding credentials in its error."""

    name = "leaky"
    default_config = MappingProxyType({"enabled": True})

    def run(self, hook: MemoryHook | None = None) -> None:
        raise ConnectionError(f"cannot reach {SECRET_URL}")


class LayersPlugin:
    """An in-code plugin: the services above and a profile named ``layers``."""

    def __init__(self, profile: Path, services: tuple[type[CommonService], ...]) -> None:
        self.profile = profile
        self.classes = services

    @hookimpl
    def jaseci_like_services(self) -> list[type[CommonService]]:
        return list(self.classes)

    @hookimpl
    def jaseci_like_profiles(self) -> dict[str, Path]:
        return {"layers": self.profile}


MakeRuntime = Callable[..., Runtime]


def build_runtime(
    folder: Path,
    meta: MetaService,
    *,
    profile: Mapping[str, Any] | None = None,
    file: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    services: tuple[type[CommonService], ...] = (LayeredService,),
) -> Runtime:
    """A runtime over ``services`` with the given profile, file and environment layers."""
    profile_path = folder / "profile.yaml"
    profile_path.write_text(yaml.safe_dump(dict(profile or {})))
    config_file = None
    if file is not None:
        config_file = folder / "app.yaml"
        config_file.write_text(yaml.safe_dump(dict(file)))
    return Runtime(
        config_file=config_file,
        profile="layers" if profile is not None else None,
        environ=dict(env or {}),
        meta=meta,
        discover=False,
        plugins={"layers": LayersPlugin(profile_path, services)},
    )


@pytest.fixture
def make_runtime(tmp_path: Path, meta: MetaService) -> MakeRuntime:
    def make(**kwargs: Any) -> Runtime:
        return build_runtime(tmp_path, meta, **kwargs)

    return make


def empty_hook() -> MemoryHook:
    """A hook that reads no environment and no file."""
    return MemoryHook(ConfigLayers(environ={}))


def snapshot(hook: MemoryHook) -> dict[str, str | None]:
    return {name: hook.get_glob(name) for name in hook.list_glob()}


# -- globs --------------------------------------------------------------------------------


def test_save_glob_of_a_dict_stores_its_json_text() -> None:
    hook = empty_hook()
    hook.save_glob("REDIS_CONFIG", {"port": 6379, "host": "localhost"})
    text = hook.get_glob("REDIS_CONFIG")
    assert isinstance(text, str)
    assert json.loads(text) == {"port": 6379, "host": "localhost"}


def test_save_glob_of_a_list_stores_its_json_text() -> None:
    hook = empty_hook()
    hook.save_glob("ITEMS", [1, "two", {"three": 3}])
    assert json.loads(hook.get_glob("ITEMS") or "null") == [1, "two", {"three": 3}]


def test_save_glob_of_a_json_string_keeps_the_text_as_given() -> None:
    hook = empty_hook()
    hook.save_glob("RAW", '{"b": 2,  "a": 1}')
    assert hook.get_glob("RAW") == '{"b": 2,  "a": 1}'


@pytest.mark.parametrize("bad", ["not json", "{'single': 'quotes'}", "", "[1, 2"])
def test_save_glob_of_a_non_json_string_is_a_glob_error_and_keeps_the_old_value(
    bad: str,
) -> None:
    hook = empty_hook()
    hook.save_glob("KEEP", {"v": 1})
    with pytest.raises(GlobError, match=r"'KEEP'.*not JSON"):
        hook.save_glob("KEEP", bad)
    with pytest.raises(GlobError, match="'NEW'"):
        hook.save_glob("NEW", bad)
    assert hook.get_glob("KEEP") == '{"v":1}'
    assert not hook.has_glob("NEW")
    assert hook.list_glob() == ["KEEP"]


def test_save_glob_of_a_value_json_cannot_hold_is_a_glob_error() -> None:
    hook = empty_hook()
    with pytest.raises(GlobError, match="'ODD'"):
        hook.save_glob("ODD", {"when": object()})
    assert hook.list_glob() == []


def test_has_list_destroy_and_commit() -> None:
    hook = empty_hook()
    assert hook.get_glob("B") is None
    assert not hook.has_glob("B")
    hook.save_glob("B", {"x": 1})
    hook.save_glob("A", "[]")
    hook.save_glob("C", "true")
    assert hook.has_glob("B")
    assert hook.list_glob() == ["A", "B", "C"]
    hook.commit()
    assert snapshot(hook) == {"A": "[]", "B": '{"x":1}', "C": "true"}
    hook.destroy_glob("B")
    hook.destroy_glob("never-saved")
    assert not hook.has_glob("B")
    assert hook.get_glob("B") is None
    assert hook.list_glob() == ["A", "C"]


def test_concurrent_saves_from_many_threads_all_land() -> None:
    hook = empty_hook()
    threads_n, per_thread = 16, 50
    barrier = threading.Barrier(threads_n)

    def writer(index: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            hook.save_glob(f"G{index:02d}_{j:02d}", {"i": index, "j": j})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = hook.list_glob()
    assert len(names) == threads_n * per_thread
    assert json.loads(hook.get_glob("G07_31") or "null") == {"i": 7, "j": 31}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_any_json_mapping_round_trips_through_a_glob(value: dict[str, Any]) -> None:
    hook = empty_hook()
    hook.save_glob("ANY", value)
    assert json.loads(hook.get_glob("ANY") or "null") == value


# -- service_glob -------------------------------------------------------------------------


def test_service_glob_stores_the_default_when_absent() -> None:
    hook = empty_hook()
    default = {"host": "localhost", "port": 6379}
    assert hook.service_glob("REDIS_CONFIG", default) == default
    assert hook.has_glob("REDIS_CONFIG")
    assert json.loads(hook.get_glob("REDIS_CONFIG") or "null") == default


def test_service_glob_returns_a_copy_not_the_stored_or_default_mapping() -> None:
    hook = empty_hook()
    default = {"pool": {"size": 1}}
    got = hook.service_glob("DB_CONFIG", default)
    got["pool"]["size"] = 99
    assert default == {"pool": {"size": 1}}
    assert hook.service_glob("DB_CONFIG", default) == {"pool": {"size": 1}}


def test_service_glob_merges_defaults_added_later_over_an_old_stored_glob() -> None:
    hook = empty_hook()
    old_text = json.dumps({"host": "cache.internal", "pool": {"size": 5}})
    hook.save_glob("REDIS_CONFIG", old_text)
    new_release_default = {
        "host": "localhost",
        "port": 6379,
        "pool": {"size": 1, "recycle": 30},
    }
    got = hook.service_glob("REDIS_CONFIG", new_release_default)
    assert got == {"host": "cache.internal", "port": 6379, "pool": {"size": 5, "recycle": 30}}
    # The stored glob is the user's: reading does not rewrite it.
    assert hook.get_glob("REDIS_CONFIG") == old_text


def test_service_glob_applies_the_environment_above_the_stored_glob() -> None:
    hook = MemoryHook(ConfigLayers(environ={"JASECI_LIKE__REDIS__PORT": "7001"}))
    hook.save_glob("REDIS_CONFIG", {"port": 6380})
    assert hook.service_glob("REDIS_CONFIG", {"port": 6379, "db": 0}) == {"port": "7001", "db": 0}
    resolved = hook.resolved("REDIS_CONFIG")
    assert resolved is not None
    assert resolved.origin_of(["port"]) == "env JASECI_LIKE__REDIS__PORT"
    assert resolved.origin_of(["db"]) == "default"


def test_service_glob_refuses_a_stored_glob_that_is_not_a_mapping() -> None:
    hook = empty_hook()
    hook.save_glob("REDIS_CONFIG", "[1, 2]")
    with pytest.raises(GlobError, match=r"REDIS_CONFIG.*list"):
        hook.service_glob("REDIS_CONFIG", {"port": 6379})


# -- precedence and origins ------------------------------------------------------------------

PROFILE_LAYER = {"layered": {"b": 2, "c": 2, "d": 2, "e": 2}}
FILE_LAYER = {"layered": {"c": 3, "d": 3, "e": 3}}


def test_each_layer_beats_the_one_below_and_names_itself_as_origin(
    make_runtime: MakeRuntime, tmp_path: Path
) -> None:
    runtime = make_runtime(
        profile=PROFILE_LAYER, file=FILE_LAYER, env={"JASECI_LIKE__LAYERED__E": "5"}
    )
    api = ConfigApi(runtime.hook)
    effective = api.config_set("layered", {"d": 4, "e": 4})
    assert {k: effective[k] for k in "abcde"} == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert api.config_get("layered")["e"] == 5  # the schema turned "5" into an int
    resolved = api.resolve("layered")
    assert {k: resolved.origin_of([k]) for k in "abcde"} == {
        "a": "default",
        "b": f"profile layers {tmp_path / 'profile.yaml'}",
        "c": f"file {tmp_path / 'app.yaml'}",
        "d": "stored",
        "e": "env JASECI_LIKE__LAYERED__E",
    }


def test_a_nested_key_takes_its_origin_from_its_own_layer(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(env={"JASECI_LIKE__LAYERED__LIMITS__SIZE": "7"})
    api = ConfigApi(runtime.hook)
    assert api.config_get("layered")["limits"] == {"size": 7, "rate": 1.0}
    resolved = api.resolve("layered")
    assert resolved.origin_of(["limits", "size"]) == "env JASECI_LIKE__LAYERED__LIMITS__SIZE"
    assert resolved.origin_of(["limits", "rate"]) == "default"
    leaves = {".".join(path): origin for path, _, origin in resolved.leaves()}
    assert leaves["limits.size"] == "env JASECI_LIKE__LAYERED__LIMITS__SIZE"
    assert leaves["a"] == "default"


def test_a_value_set_with_config_set_beats_the_file_even_when_it_equals_the_default(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(file={"layered": {"c": 3}})
    api = ConfigApi(runtime.hook)
    effective = api.config_set("layered", {"c": 1})
    assert effective["c"] == 1, (
        "config_set('layered', {'c': 1}) was ignored because 1 is also the packaged "
        "default: stored values are compared with the defaults, so the file's c=3 "
        "still wins, against the precedence file < stored"
    )


LAYER_ORDER = ("profile", "file", "stored", "env")


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {layer: st.sets(st.sampled_from("abcde")) for layer in LAYER_ORDER},
    )
)
def test_the_highest_layer_that_sets_a_key_wins(sets: dict[str, set[str]]) -> None:
    # Layer n (profile=2 ... env=5) sets its keys to n; the default of every key is 1.
    values = {layer: 2 + i for i, layer in enumerate(LAYER_ORDER)}
    with tempfile.TemporaryDirectory() as folder:
        meta = MetaService.isolated()
        runtime = build_runtime(
            Path(folder),
            meta,
            profile={"layered": dict.fromkeys(sets["profile"], values["profile"])},
            file={"layered": dict.fromkeys(sets["file"], values["file"])},
            env={f"JASECI_LIKE__LAYERED__{k.upper()}": str(values["env"]) for k in sets["env"]},
        )
        api = ConfigApi(runtime.hook)
        if sets["stored"]:
            api.config_set("layered", dict.fromkeys(sets["stored"], values["stored"]))
        effective = api.config_get("layered")
        resolved = api.resolve("layered")
    for key in "abcde":
        top = [layer for layer in LAYER_ORDER if key in sets[layer]]
        assert effective[key] == (values[top[-1]] if top else 1), key
        origin = resolved.origin_of([key])
        assert origin.split()[0] == (top[-1] if top else "default"), (key, origin)


# -- environment ---------------------------------------------------------------------------


def test_env_json_list_and_mapping_values_are_parsed(make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(
        env={
            "JASECI_LIKE__LAYERED__TAGS": '["blue", "green"]',
            "JASECI_LIKE__LAYERED__LIMITS": '{"rate": 2.5}',
            "JASECI_LIKE__LAYERED__A": "42",
            "UNRELATED__LAYERED__B": "not ours",
        }
    )
    got = ConfigApi(runtime.hook).config_get("layered")
    assert got["tags"] == ["blue", "green"]
    assert got["limits"] == {"size": 1, "rate": 2.5}
    assert got["a"] == 42
    assert got["b"] == 1


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        pytest.param(
            {"JASECI_LIKE__LAYERED__TAGS": '["blue",'},
            ["JASECI_LIKE__LAYERED__TAGS", "not valid JSON"],
            id="invalid-json",
        ),
        pytest.param(
            {"JASECI_LIKE__LAYERED": "1"},
            ["JASECI_LIKE__LAYERED", "<SERVICE>__<KEY>"],
            id="no-key",
        ),
        pytest.param(
            {"JASECI_LIKE__LAYERED____A": "1"},
            ["JASECI_LIKE__LAYERED____A"],
            id="empty-part",
        ),
        pytest.param(
            {"JASECI_LIKE__LAYERED__A": "eleven"},
            ["layered.a", "'eleven'", "env JASECI_LIKE__LAYERED__A"],
            id="wrong-type",
        ),
        pytest.param(
            {"JASECI_LIKE__LAYERED__LIMITS__SIZE": "0"},
            ["layered.limits.size", "'0'", "env JASECI_LIKE__LAYERED__LIMITS__SIZE"],
            id="impossible-value",
        ),
        pytest.param(
            {"JASECI_LIKE__LAYERED__COLOUR": "red"},
            ["layered.colour", "'red'", "env JASECI_LIKE__LAYERED__COLOUR", "unknown key"],
            id="unknown-key",
        ),
        pytest.param(
            {"JASECI_LIKE__NOSUCH__PORT": "1"},
            ["'nosuch'", "env JASECI_LIKE__NOSUCH__PORT", "no service"],
            id="unknown-section",
        ),
    ],
)
def test_a_bad_env_variable_is_refused_naming_the_variable(
    make_runtime: MakeRuntime, env: dict[str, str], fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_runtime(env=env)
    message = str(caught.value)
    assert len(caught.value.problems) == 1, message
    for fragment in fragments:
        assert fragment in message


def test_env_invalid_json_of_a_secret_key_does_not_echo_it(make_runtime: MakeRuntime) -> None:
    with pytest.raises(ConfigError) as caught:
        make_runtime(env={"JASECI_LIKE__LAYERED__PASSWORD": f"[{SECRET}"})
    assert "JASECI_LIKE__LAYERED__PASSWORD" in str(caught.value)
    assert SECRET not in str(caught.value)


# -- secrets ---------------------------------------------------------------------------------


def test_mask_hides_secret_keys_and_url_passwords_at_any_depth() -> None:
    doc = {
        "password": SECRET,
        "user": "bob",
        "nested": {"api_key": SECRET, "token": SECRET, "url": SECRET_URL},
        "urls": [SECRET_URL, "https://example.org/path"],
        "empty_password": "",
    }
    shown = mask(doc)
    assert SECRET not in json.dumps(shown)
    assert shown["password"] == MASK
    assert shown["user"] == "bob"
    assert shown["nested"]["url"] == f"postgres://bob:{MASK}@db.example:5432/app"
    assert shown["urls"][1] == "https://example.org/path"
    assert redact_url(SECRET_URL) == f"postgres://bob:{MASK}@db.example:5432/app"
    assert is_secret_key("db_password") and is_secret_key("API_KEY")
    assert not is_secret_key("port")


@pytest.mark.parametrize(
    ("file", "shown"),
    [
        pytest.param({"password": SECRET_NUMBER}, "layered.password = '***'", id="secret-key"),
        pytest.param(
            {"a": SECRET_URL}, "'postgres://bob:***@db.example:5432/app'", id="url-in-value"
        ),
    ],
)
def test_config_errors_never_carry_a_secret(
    make_runtime: MakeRuntime, file: dict[str, Any], shown: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make_runtime(file={"layered": file})
    message = str(caught.value)
    assert shown in message
    assert SECRET not in message
    assert str(SECRET_NUMBER) not in message


def test_start_failures_are_masked_in_logs_status_and_errors(
    make_runtime: MakeRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = make_runtime(services=(LeakyService,))
    with caplog.at_level(logging.INFO):
        with pytest.raises(ServiceStartError) as caught:
            runtime.start()
        runtime.stop()
    assert "leaky" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "postgres://bob:***@db.example" in str(caught.value)
    assert "Skipping LeakyService" in caplog.text
    assert SECRET not in caplog.text
    (row,) = runtime.status()
    assert row.state == "FAILED"
    assert row.error is not None and "bob:***@" in row.error
    assert SECRET not in repr(row)


# -- ConfigApi.config_set ------------------------------------------------------------------------


def test_config_set_stores_a_valid_change_and_returns_the_effective_config(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime()
    api = ConfigApi(runtime.hook)
    effective = api.config_set("layered", {"a": 7, "limits": {"size": 3}})
    assert effective["a"] == 7
    assert effective["limits"] == {"size": 3, "rate": 1.0}
    stored = json.loads(runtime.hook.get_glob("LAYERED_CONFIG") or "null")
    assert stored["a"] == 7
    assert stored["limits"] == {"size": 3, "rate": 1.0}
    # By glob name as well as by service name.
    assert api.config_set("LAYERED_CONFIG", {"b": 8})["b"] == 8
    assert api.config_get("layered")["a"] == 7


def test_config_refresh_restarts_the_service_with_the_new_config(
    make_runtime: MakeRuntime,
) -> None:
    runtime = make_runtime(file={"layered": {"enabled": True}})
    hook = runtime.start()
    before = hook.services["layered"]
    assert before.is_running()
    assert before.config["a"] == 1
    api = ConfigApi(hook)
    api.config_set("layered", {"a": 9})
    after = api.config_refresh("layered")
    assert after is not None and after.is_running()
    assert json.loads(hook.get_glob("LAYERED_CONFIG") or "{}").get("a") == 9, (
        "config_refresh lost the value config_set stored: it drops the memory copy "
        "(RedisHook.forget) although no Redis or SQL layer holds another copy"
    )
    assert after.config["a"] == 9


BAD_SETS = [
    pytest.param("layered", {"a": "seven"}, ["layered.a", "'seven'", "config_set"], id="type"),
    pytest.param(
        "layered", {"colour": "red"}, ["layered.colour", "'red'", "unknown key"], id="unknown-key"
    ),
    pytest.param(
        "layered", {"limits": {"size": 0}}, ["layered.limits.size", "0"], id="impossible-nested"
    ),
    pytest.param(
        "layered", {"limits": {"speed": 1}}, ["layered.limits.speed", "unknown key"], id="nested"
    ),
    pytest.param("nosuch", {"a": 1}, ["unknown config name 'nosuch'"], id="unknown-name"),
    pytest.param("NOSUCH_CONFIG", {"a": 1}, ["'NOSUCH_CONFIG'"], id="unknown-glob"),
    pytest.param("layered", ["a"], ["must be a mapping"], id="not-a-mapping"),
    pytest.param("layered", {"password": SECRET_NUMBER}, ["layered.password", "***"], id="secret"),
]


@pytest.mark.parametrize(("name", "value", "fragments"), BAD_SETS)
def test_config_set_refuses_an_invalid_change_and_changes_nothing(
    make_runtime: MakeRuntime, name: str, value: Any, fragments: list[str]
) -> None:
    runtime = make_runtime(file={"layered": {"c": 3}})
    api = ConfigApi(runtime.hook)
    api.config_set("layered", {"d": 4})
    before = snapshot(runtime.hook)
    assert before  # the runtime stored its defaults and the change above
    with pytest.raises(ConfigError) as caught:
        api.config_set(name, cast(Mapping[str, Any], value))
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    assert str(SECRET_NUMBER) not in message
    assert snapshot(runtime.hook) == before
    assert api.config_get("layered")["d"] == 4


@pytest.mark.parametrize(("name", "value", "fragments"), BAD_SETS)
def test_config_set_refused_on_a_fresh_hook_stores_no_glob_at_all(
    meta: MetaService, name: str, value: Any, fragments: list[str]
) -> None:
    meta.add_service_builder("layered", LayeredService)
    hook = empty_hook()
    hook.meta = meta
    with pytest.raises(ConfigError):
        ConfigApi(hook).config_set(name, cast(Mapping[str, Any], value))
    assert hook.list_glob() == []


@pytest.fixture
def secret_runtime(make_runtime: MakeRuntime) -> Iterator[Runtime]:
    runtime = make_runtime(file={"layered": {"password": SECRET, "dsn": SECRET_URL}})
    yield runtime
    runtime.stop()


def test_the_effective_config_keeps_secrets_usable_for_the_service(
    secret_runtime: Runtime,
) -> None:
    # Masking is for output only: the service itself gets the real values.
    got = ConfigApi(secret_runtime.hook).config_get("layered")
    assert got["password"] == SECRET
    assert got["dsn"] == SECRET_URL
    assert mask(got)["password"] == MASK
    assert SECRET not in json.dumps(mask(got))
