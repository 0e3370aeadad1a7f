"""The plan ``stockade run`` executes: from the cache, else compiled now.

:func:`load_plan` reads the config file's bytes and looks its key up in the
data directory's plan cache (:mod:`~stockade.runplan.cache`); only on a
miss does it import the loader (yaml, pydantic), validate the file with
every error and warning as ever, compile it, and keep the plan when that
is safe. Both ways the run gets a :class:`~stockade.runplan.model.RunPlan`
built from the same data.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

from stockade.configfile import read_config
from stockade.errors import UsageError
from stockade.runplan.cache import PlanCache, cacheable, enabled, plan_key
from stockade.runplan.model import RunPlan

__all__ = ["load_plan"]


def load_plan(
    path: Path, data_dir: Path, environ: Mapping[str, str] | None = None
) -> tuple[RunPlan, bool]:
    """The run plan of the config at ``path``, and whether it came from the
    cache under ``data_dir``. Raises what :func:`stockade.config.load` raises
    for a config that does not load (never for a cache that fails)."""
    env = os.environ if environ is None else environ
    text = read_config(path)
    raw = text.encode("utf-8", "surrogateescape")
    cache = PlanCache(data_dir) if enabled(env) else None
    key = plan_key(raw, path, env) if cache is not None else ""
    if cache is not None:
        found = cache.get(key)
        if found is not None:
            return found, True
    from stockade.config.loader import loads
    from stockade.runplan.compile import compile_config

    lookups: dict[str, bool] = {}
    config = loads(
        text, filename=str(path), base_dir=path.resolve().parent, env=env, lookups=lookups
    )
    data = compile_config(config)
    plan = RunPlan(data)
    if cache is not None and cacheable(raw, lookups):
        with contextlib.suppress(OSError, UsageError):
            cache.put(key, data)
    return plan, False
