"""Keyword calls without a kwargs dict: ``RUNS_CREATED.inc(site=..., protocol=...)`` at bound-child cost.

On its first call a counter's ``inc`` (a histogram's ``observe``) is replaced, for
that metric object only, by a function generated from the metric's declared tag
keys: keyword-only parameters, so a call binds its tags straight to locals, builds
one tuple of values in declared order and finds the bound child kept for it. Any
call the generated function does not recognise - an undeclared or missing tag, a
value that is not text, a tag set seen for the first time - goes through the
ordinary, checked path with exactly the tags given. Nothing here is generated
from caller input: only from the catalog's tag keys, which are identifiers.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

from netauto_statsd.catalog.model import CatalogError, Metric
from netauto_statsd.emitter.resolve import cacheable

#: Bound children kept per metric for repeated keyword calls (cleared when full).
KIDS_PER_METRIC = 1000
_MISSING = object()

_TEMPLATE = """
def {method}({value_param}, /, *, {params}, **extra):
    if extra{any_missing}:
        return slow(value, extra, ({values}))
    try:
        child = kids.get(({values}))
    except Exception:
        child = None
    if child is None:
        return slow(value, extra, ({values}))
    child.{child_method}(value)
"""


def install(
    metric: Metric,
    method: str,
    ordinary: Callable[[Metric, object, dict[str, object]], None],
    bind: Callable[[Metric, dict[str, object]], Any],
) -> None:
    """Give ``metric`` a generated ``method`` (``inc`` or ``observe``).

    ``ordinary`` is the checked path; ``bind`` makes the bound child cached per tag values.
    """
    keys = metric.tag_keys
    if not keys or not all(k.isidentifier() and not keyword.iskeyword(k) and k != "value" for k in keys):
        return  # no tags (nothing to gain) or keys that cannot be parameters: keep the kwargs path
    kids: dict[tuple[object, ...], Any] = {}

    def slow(value: object, extra: dict[str, object], given: tuple[object, ...]) -> None:
        tags = {k: v for k, v in zip(keys, given, strict=True) if v is not _MISSING}
        tags.update(extra)
        ordinary(metric, value, tags)
        if extra or len(tags) != len(keys) or not cacheable(metric.name, tags):
            return
        if len(kids) >= KIDS_PER_METRIC:
            kids.clear()
        try:
            kids[given] = bind(metric, tags)
        except CatalogError:  # strict mode: the ordinary path has raised already
            pass

    source = _TEMPLATE.format(
        method=method,
        value_param="value=1" if method == "inc" else "value",
        params=", ".join(f"{k}=_MISSING" for k in keys),
        any_missing="".join(f" or {k} is _MISSING" for k in keys),
        values=", ".join(keys) + ("," if len(keys) == 1 else ""),
        child_method=method,
    )
    namespace: dict[str, Any] = {"_MISSING": _MISSING, "kids": kids, "slow": slow}
    exec(compile(source, f"<netauto_statsd {metric.name}.{method}>", "exec"), namespace)
    object.__setattr__(metric, method, namespace[method])
