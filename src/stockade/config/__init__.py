"""Reading ``stockade.yaml``: find it, load it, describe it.

:func:`load` turns a file into a validated :class:`stockade.spec.Config` or
raises :class:`ConfigValidationError` with every problem at once, each as
``FILE:LINE: key.path: message``. :func:`summary` and :func:`json_schema`
back ``stockade validate`` and ``stockade schema``.
"""

from stockade.config.loader import CONFIG_NAMES, find_config, load, loads, render_path
from stockade.config.problems import ConfigValidationError, Problem
from stockade.config.summary import json_schema, summary
from stockade.spec import Config

__all__ = [
    "CONFIG_NAMES",
    "Config",
    "ConfigValidationError",
    "Problem",
    "find_config",
    "json_schema",
    "load",
    "loads",
    "render_path",
    "summary",
]
