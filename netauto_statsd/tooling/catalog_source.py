"""Which catalog the tools judge: the built-ins plus the app's catalog modules.

The modules come from, all together and in this order: ``--catalog MODULE``
(repeatable), ``NETAUTO_STATSD_CATALOG`` (comma-separated) and
``[tool.netauto-statsd] catalog = [...]`` in ``pyproject.toml`` of the current
directory. The current directory is importable, as with ``python -m``, so an
app's ``myapp.metrics`` loads from its checkout.

Also the one namespace rule every tool shares with the client
(:class:`netauto_statsd.config.Settings` decides).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from netauto_statsd.catalog import CatalogError, Metric, load
from netauto_statsd.config import ConfigError, Settings

ENV_VARIABLE = "NETAUTO_STATSD_CATALOG"


def pyproject_modules(directory: Path) -> list[str]:
    """``[tool.netauto-statsd] catalog`` of ``directory/pyproject.toml`` (``[]`` when absent).

    Raises:
        CatalogError: the file is not valid TOML or the value is not a list of module names.
    """
    path = directory / "pyproject.toml"
    if not path.is_file():
        return []
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    value = data.get("tool", {}).get("netauto-statsd", {}).get("catalog", [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{path}: [tool.netauto-statsd] catalog must be a list of module names")
    return list(value)


def catalog_modules(
    cli: Sequence[str] = (), env: Mapping[str, str] | None = None, directory: Path | None = None
) -> list[str]:
    """Every app catalog module named by the command line, the environment and pyproject.toml, once each."""
    env = os.environ if env is None else env
    found = list(cli)
    found += [m.strip() for m in env.get(ENV_VARIABLE, "").split(",") if m.strip()]
    found += pyproject_modules(directory or Path.cwd())
    return list(dict.fromkeys(found))


def load_catalog(cli: Sequence[str] = (), env: Mapping[str, str] | None = None) -> tuple[Metric, ...]:
    """Import the app catalog modules (current directory importable); return every declared metric.

    Raises:
        CatalogError: a module cannot be imported or declares a conflicting metric.
    """
    modules = catalog_modules(cli, env)
    here = str(Path.cwd())
    if modules and here not in sys.path:
        sys.path.insert(0, here)
    return load(modules)


def namespace_arg(value: str) -> str:
    """argparse ``type=``: the client's own namespace rule, so a tool never accepts what the client refuses."""
    try:
        Settings(namespace=value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value
