"""Find the metric and label names a PromQL expression refers to, without a full parser.

Used to prove that dashboard panels and alert rules only read series the
catalog and the mapping produce (``netauto-statsd check``, the dashboard tests)
and that every selector of a dashboard query sits inside an aggregation, so the
panel stays correct when Prometheus scrapes several exporters.

It is a tokenizer with a little context, not a validator: a malformed
expression gives a best-effort answer. Whether a query parses is proved by
running it through a real Prometheus (``tests/grafana/test_end_to_end.py``).
Grafana variables (``$site``, ``${site}``, ``[[site]]``, ``$__rate_interval``)
are accepted wherever Grafana would substitute them.

Example:
    >>> refs = references('sum by (site) (rate(netauto_runs_created_total{env="$env"}[5m]))')
    >>> sorted(refs.metrics), sorted(refs.labels)
    (['netauto_runs_created_total'], ['env', 'site'])
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: Aggregation operators: a selector anywhere inside one of these is aggregated.
AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
#: Keywords that introduce a parenthesised list of label names.
_LABEL_LIST = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"bool", "and", "or", "unless", "offset", "inf", "nan", "atan2", "start", "end"})
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
   |(?P<comment>\#[^\n]*)
   |(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
   |(?P<var>\$\{[^}]*\}|\$\w+|\[\[\w+\]\])
   |(?P<range>\[[^\]]*\])
   |(?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[a-zA-Z0-9]*)
   |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
   |(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){},@])
    """,
    re.VERBOSE,
)
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.*\S)\s*,\s*)?(?P<label>[a-zA-Z_]\w*)\s*\)\s*$", re.S)


@dataclass(frozen=True)
class Selector:
    """One series selector: ``metric{label=...}``.

    Attributes:
        metric: the metric name (``""`` for a selector without one).
        labels: label names its matchers use, in order of appearance.
        aggregated: whether it sits inside an aggregation operator.
    """

    metric: str
    labels: tuple[str, ...]
    aggregated: bool


@dataclass(frozen=True)
class References:
    """What an expression refers to.

    Attributes:
        metrics: every metric name selected.
        labels: every label name written: matchers and ``by``/``without``/``on``/
            ``ignoring``/``group_left``/``group_right`` lists.
        grouping: the label names of those lists only.
        selectors: each selector, in order of appearance.
    """

    metrics: frozenset[str]
    labels: frozenset[str]
    grouping: frozenset[str]
    selectors: tuple[Selector, ...]


class _Token:
    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text


def _tokens(expr: str) -> list[_Token]:
    out = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:  # an unknown character: skip it, stay best-effort
            pos += 1
            continue
        kind = match.lastgroup or ""
        if kind not in ("ws", "comment"):
            out.append(_Token(kind, match.group()))
        pos = match.end()
    return out


def references(expr: str) -> References:
    """Return the metric names, label names and selectors ``expr`` refers to.

    Example:
        >>> r = references("histogram_quantile(0.95, sum by (le) (rate(x_bucket{site=~'a|b'}[5m])))")
        >>> r.selectors
        (Selector(metric='x_bucket', labels=('site',), aggregated=True),)
    """
    tokens = _tokens(expr)
    metrics: set[str] = set()
    labels: set[str] = set()
    grouping: set[str] = set()
    selectors: list[Selector] = []
    stack: list[str] = []  # "agg", "call", "group", "labels"
    pending = ""  # what the next "(" opens
    after_labels = ""  # what opens after a label list: "agg" in `sum by (x) (...)`
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if tok.kind == "ident":
            word = tok.text.lower()
            if stack and stack[-1] == "labels":
                labels.add(tok.text)
                grouping.add(tok.text)
            elif word in _LABEL_LIST:
                after_labels = "agg" if pending == "agg" else ""
                pending = "labels" if nxt == "(" else after_labels
            elif word in AGGREGATIONS and nxt in ("(", "by", "without"):
                pending = "agg"
            elif nxt == "(":
                pending = "call"
            elif word not in _KEYWORDS:
                matcher_labels, i = _matchers(tokens, i + 1)
                metric = tok.text
                selectors.append(Selector(metric, tuple(matcher_labels), "agg" in stack))
                metrics.add(metric)
                labels.update(matcher_labels)
                continue
        elif tok.text == "{":  # selector without a metric name
            matcher_labels, i = _matchers(tokens, i)
            name = _name_matcher(tokens, i)
            selectors.append(Selector(name, tuple(matcher_labels), "agg" in stack))
            if name:
                metrics.add(name)
            labels.update(x for x in matcher_labels if x != "__name__")
            continue
        elif tok.text == "(":
            stack.append(pending or "group")
            pending = ""
        elif tok.text == ")":
            closed = stack.pop() if stack else ""
            if closed == "labels":
                pending, after_labels = after_labels, ""
        i += 1
    return References(frozenset(metrics), frozenset(labels), frozenset(grouping), tuple(selectors))


def _matchers(tokens: list[_Token], i: int) -> tuple[list[str], int]:
    """Read an optional ``{...}`` at ``tokens[i]``; return its label names and the index after it."""
    if i >= len(tokens) or tokens[i].text != "{":
        return [], i
    names = []
    i += 1
    while i < len(tokens) and tokens[i].text != "}":
        if tokens[i].kind == "ident" and i + 1 < len(tokens) and tokens[i + 1].text in _MATCH_OPS:
            names.append(tokens[i].text)
        i += 1
    return names, i + 1


def _name_matcher(tokens: list[_Token], end: int) -> str:
    """The value of an ``__name__="..."`` matcher in the braces that close just before ``end``."""
    j = end - 1
    while j > 0 and tokens[j].text != "{":
        j -= 1
    for k in range(j, end - 2):
        if tokens[k].text == "__name__" and tokens[k + 1].text == "=" and tokens[k + 2].kind == "string":
            return tokens[k + 2].text[1:-1]
    return ""


def parse_label_values(query: str) -> tuple[str, str] | None:
    """Split a Grafana ``label_values(selector, label)`` variable query.

    Returns ``(selector, label)`` (selector ``""`` for ``label_values(label)``),
    or ``None`` if ``query`` is not a ``label_values`` query.

    Example:
        >>> parse_label_values('label_values(netauto_runs_created_total{env="$env"}, site)')
        ('netauto_runs_created_total{env="$env"}', 'site')
    """
    match = _LABEL_VALUES.match(query)
    if match is None:
        return None
    return match.group("selector") or "", match.group("label")


def unaggregated(expr: str) -> list[str]:
    """Metric names of selectors in ``expr`` that no aggregation operator wraps.

    An empty list means the query is safe with several exporters: each series
    is summed (or max-ed) over the exporters that report it.
    """
    return [s.metric for s in references(expr).selectors if not s.aggregated]


def problems(
    expr: str,
    series_labels: Mapping[str, Iterable[str]],
    always: Iterable[str] = ("job", "instance"),
) -> list[str]:
    """Check ``expr`` against the series that exist; return what is wrong (empty = fine).

    Args:
        expr: a PromQL expression (Grafana variables allowed).
        series_labels: every known series name and its label names.
        always: labels every scraped series has (Prometheus adds ``job`` and ``instance``).

    Each selector must name a known series and match only labels that series
    has; ``by``/``without``/``on``/... lists may only name labels of some
    series the expression selects (``le`` of a ``_bucket`` series included).
    """
    out = []
    refs = references(expr)
    always = set(always)
    known_here: set[str] = set(always)
    for sel in refs.selectors:
        if not sel.metric:
            out.append("selector without a metric name")
            continue
        if sel.metric not in series_labels:
            out.append(f"unknown series {sel.metric}")
            continue
        have = set(series_labels[sel.metric]) | always
        known_here |= have
        for label in sel.labels:
            if label not in have:
                out.append(f"{sel.metric} has no label {label!r}")
    for label in sorted(refs.grouping - known_here):
        out.append(f"grouping by {label!r}, which no selected series has")
    return out
