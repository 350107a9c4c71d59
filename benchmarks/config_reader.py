"""Process B of ``config.propagation_p99``: prints each new probe level as it sees it.

Run as ``python -m benchmarks.config_reader`` with the store given in the
environment (JASECI_LIKE__DB__URL, JASECI_LIKE__REDIS__URL, ...). It prints
``ready``, then ``<level> <monotonic ns>`` each time another process's change to
the probe config becomes readable here; it ends when stdin closes.
"""

from __future__ import annotations

import sys
import threading
import time

from benchmarks.probe import ProbePlugin
from jaseci_like import ConfigApi, MetaService, RedisHook, Runtime


def main() -> None:
    runtime = Runtime(plugins={"probe": ProbePlugin()}, meta=MetaService.isolated())
    runtime.start()
    hook = runtime.hook
    assert isinstance(hook, RedisHook)
    api = ConfigApi(hook)
    changed = threading.Event()
    hook.on_change(lambda name: changed.set() if name in ("PROBE_CONFIG", "*") else None)
    done = threading.Event()

    def watch() -> None:
        last = api.config_get("probe")["level"]
        while not done.is_set():
            if not changed.wait(0.5):
                continue
            changed.clear()
            level = api.config_get("probe")["level"]
            if level != last:
                last = level
                print(level, time.monotonic_ns(), flush=True)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    print("ready", flush=True)
    sys.stdin.read()
    done.set()
    watcher.join(2)
    runtime.stop()


if __name__ == "__main__":
    main()
