"""``netauto-statsd dashboards --publish``: upload the generated dashboards to a running Grafana.

What PromEx does at app start, as a command: every generated dashboard goes to
the Grafana named by ``GRAFANA_URL`` (credentials: ``GRAFANA_TOKEN``, a service
account token with the Editor role, or ``GRAFANA_USER`` / ``GRAFANA_PASSWORD``)
into one folder, created when missing. Uids are stable - the generator's uid,
or ``<app>-<dashboard>`` with ``--app`` so several apps (or a Grafana that
already provisions the same dashboards from files) do not collide - so a second
run updates in place, and a dashboard whose content has not changed is not
written again. ``--dry-run`` reads Grafana and prints what would change.

The HTTP API is spoken through the maintained ``grafana-client`` package (the
``grafana`` extra). Calls, all documented Grafana HTTP API endpoints:
``GET /api/health``, ``GET /api/folders/:uid``, ``GET /api/search?type=dash-folder``,
``POST /api/folders``, ``GET /api/dashboards/uid/:uid``, ``POST /api/dashboards/db``
(never with ``overwrite``: an update carries the version it read, so a concurrent
edit or a same-titled dashboard is a conflict, not silently replaced).

Every failure is one line naming what failed; the secret is never printed,
logged or written anywhere.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from netauto_statsd.annotations import GrafanaAccess, GrafanaConfigError
from netauto_statsd.tooling.dashboards import DATASOURCE_UID

#: Requirement to install when grafana-client is missing (also the ``grafana`` extra).
CLIENT_REQUIREMENT = "grafana-client==5.1.4"
#: Tag every generated dashboard carries; a uid held by a dashboard without it is not ours to replace.
OWNER_TAG = "netauto-statsd"
#: Grafana's limit on uid length.
MAX_UID = 40
#: Version message stored with each write.
MESSAGE = "netauto-statsd dashboards --publish"

T = TypeVar("T")


class PublishError(Exception):
    """A failure that stops publishing; ``str()`` is the one line to print."""


class ConflictError(PublishError):
    """One dashboard cannot be written (uid or title taken by something else); the others go on."""


@dataclass(frozen=True)
class Change:
    """What publishing did (or, with ``dry_run``, would do) to one dashboard."""

    name: str
    uid: str
    title: str
    action: str  # "create", "update" or "unchanged"
    changed: tuple[str, ...] = ()  # top-level dashboard keys that differ (for "update"; "folder" if it moves)


def slug(text: str) -> str:
    """Lower-case letters, digits and dashes (``"NetAuto Demo"`` -> ``"netauto-demo"``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def published_uid(uid: str, app: str | None) -> str:
    """The uid a dashboard is published under: its own, or ``<app>-<name>`` (<= 40 chars, stable).

    Example:
        >>> published_uid("netauto-runner-overview", "billing")
        'billing-runner-overview'
    """
    uid = uid if not app else f"{slug(app)}-{uid.removeprefix('netauto-')}"
    if len(uid) <= MAX_UID:
        return uid
    digest = hashlib.sha1(uid.encode()).hexdigest()[:8]
    return f"{uid[: MAX_UID - 9]}-{digest}"


def _retarget(node: Any, datasource_uid: str) -> Any:
    """Replace the Prometheus datasource uid everywhere in a dashboard JSON tree."""
    if isinstance(node, dict):
        if node.get("type") == "prometheus" and node.get("uid") == DATASOURCE_UID:
            return {**node, "uid": datasource_uid}
        return {key: _retarget(value, datasource_uid) for key, value in node.items()}
    if isinstance(node, list):
        return [_retarget(item, datasource_uid) for item in node]
    return node


def prepare(
    dashboards: Mapping[str, Mapping[str, Any]], *, app: str | None = None, datasource_uid: str = DATASOURCE_UID
) -> dict[str, dict[str, Any]]:
    """The dashboards as they will be published: uid (and with ``app``, title) and datasource set."""
    out = {}
    for name, source in sorted(dashboards.items()):
        board = copy.deepcopy(dict(source))
        board["uid"] = published_uid(str(board["uid"]), app)
        if app:
            board["title"] = f"{board['title']} ({app})"
        if datasource_uid != DATASOURCE_UID:
            board = _retarget(board, datasource_uid)
        out[name] = board
    return out


def _unreachable(exc: Exception) -> str:
    """Why a connection failed, in a few words (the HTTP library's repr chain is not for users)."""
    text = str(exc)
    if "refused" in text.lower() or "Failed to establish" in text:
        return "connection refused"
    if "NameResolution" in text or "not known" in text or "resolve" in text.lower():
        return "host name does not resolve"
    if "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        return "timed out"
    if "SSL" in text or "certificate" in text.lower():
        return "TLS failed: " + text.splitlines()[0][:120]
    return text.splitlines()[0][:120] if text else type(exc).__name__


def _status(exc: Exception) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


def _message(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("message"):
        return str(response["message"])
    text = str(getattr(exc, "message", "") or exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


class Publisher:
    """One publishing run against one Grafana (see the module docstring)."""

    def __init__(self, access: GrafanaAccess, *, timeout: float = 10.0) -> None:
        try:
            from grafana_client.api import GrafanaApi
        except ImportError as exc:
            raise PublishError(f"publishing needs {CLIENT_REQUIREMENT}: pip install 'netauto-statsd[grafana]'") from exc
        self.access = access
        parsed = urllib.parse.urlsplit(access.url)
        prefix = parsed.path.strip("/")
        auth: Any = (access.user, access.secret) if access.user is not None else access.secret
        self.api: Any = GrafanaApi(  # grafana-client is untyped
            auth=auth,
            host=parsed.hostname or "",
            port=parsed.port,
            protocol=parsed.scheme,
            url_path_prefix=f"{prefix}/" if prefix else "",
            timeout=timeout,
            user_agent="netauto-statsd",
        )

    # ------------------------------------------------------------------ errors
    def _call(self, what: str, action: Callable[[], T], *, missing_ok: bool = False) -> T | None:
        """Run one API call; translate every failure into a one-line PublishError (404 -> None if allowed)."""
        import niquests.exceptions
        from grafana_client.client import GrafanaException, GrafanaTimeoutError

        url, credential = self.access.url, self.access.credential
        try:
            return action()
        except (niquests.exceptions.RequestException, GrafanaTimeoutError) as exc:
            raise PublishError(self.access.redact(f"Grafana at {url} is unreachable ({_unreachable(exc)})")) from None
        except GrafanaException as exc:
            status = _status(exc)
            if status == 404 and missing_ok:
                return None
            if status == 0:
                raise PublishError(
                    self.access.redact(f"Grafana at {url} is unreachable ({_unreachable(exc)})")
                ) from None
            if status == 401:
                line = f"Grafana at {url} refused {credential} (401 Unauthorized): check the credential"
            elif status == 403:
                line = (
                    f"Grafana at {url}: {credential} may not {what} (403 Forbidden): "
                    "it needs the Editor role or write access to the folder"
                )
            elif status in (409, 412):
                raise ConflictError(self.access.redact(f"conflict: {what}: {_message(exc)}")) from None
            else:
                line = f"Grafana at {url}: {what} failed (HTTP {status}: {_message(exc)})"
            raise PublishError(self.access.redact(line)) from None

    # ------------------------------------------------------------------ steps
    def check_health(self) -> str:
        """``GET /api/health``; returns Grafana's version. Fails when the URL is not a Grafana."""
        health = self._call("read /api/health", lambda: self.api.client.GET("/health"))
        if not isinstance(health, dict) or "database" not in health:
            raise PublishError(f"{self.access.url} does not answer /api/health like Grafana does")
        if health.get("database") != "ok":
            raise PublishError(f"Grafana at {self.access.url} reports its database as {health.get('database')!r}")
        return str(health.get("version", "?"))

    def folder(self, title: str, *, dry_run: bool) -> tuple[str, str]:
        """The uid of folder ``title`` (uid ``slug(title)``, else the folder with that title); created if missing.

        Returns:
            ``(uid, action)`` with action ``"exists"`` or ``"create"``.
        """
        uid = slug(title)[:MAX_UID] or "netauto"
        found = self._call(f"read folder {uid}", lambda: self.api.folder.get_folder(uid), missing_ok=True)
        if found is not None:
            if found.get("title") != title:
                raise PublishError(
                    f"folder conflict: uid {uid!r} is the folder {found.get('title')!r}, not {title!r}; "
                    "rename it in Grafana or choose another --folder"
                )
            return uid, "exists"
        hits = self._call(
            f"search folders titled {title!r}",
            lambda: self.api.search.search_dashboards(query=title, type_="dash-folder"),
        )
        same = [hit for hit in hits or [] if hit.get("title") == title]
        if len(same) > 1:
            raise PublishError(f"folder conflict: {len(same)} folders are titled {title!r}; pass a unique --folder")
        if same:
            return str(same[0]["uid"]), "exists"
        if not dry_run:
            self._call(f"create folder {title!r}", lambda: self.api.folder.create_folder(title, uid=uid))
        return uid, "create"

    def dashboard(self, name: str, board: Mapping[str, Any], folder_uid: str, *, dry_run: bool) -> Change:
        """Create, update or leave alone one dashboard (``board`` as :func:`prepare` made it)."""
        uid, title = str(board["uid"]), str(board["title"])
        found = self._call(f"read dashboard {uid}", lambda: self.api.dashboard.get_dashboard(uid), missing_ok=True)
        body: dict[str, Any] = {"folderUid": folder_uid, "overwrite": False, "message": MESSAGE}
        changed: tuple[str, ...] = ()
        if found is None:
            action = "create"
            body["dashboard"] = {**board, "id": None}
        else:
            current, meta = found.get("dashboard", {}), found.get("meta", {})
            if meta.get("provisioned"):
                raise ConflictError(
                    f"uid conflict: {uid} is provisioned from files in this Grafana; publish with --app NAME"
                )
            if OWNER_TAG not in current.get("tags", []):
                raise ConflictError(
                    f"uid conflict: {uid} holds {current.get('title')!r}, not published by netauto-statsd"
                )
            changed = tuple(
                sorted(
                    key for key, value in board.items() if key not in ("id", "version") and current.get(key) != value
                )
            ) + (("folder",) if meta.get("folderUid") != folder_uid else ())
            if not changed:
                return Change(name, uid, title, "unchanged")
            action = "update"
            body["dashboard"] = {**board, "id": current.get("id"), "version": current.get("version")}
        if not dry_run:
            self._call(f"save dashboard {uid} ({title!r})", lambda: self.api.dashboard.update_dashboard(body))
        return Change(name, uid, title, action, changed)


def publish(
    access: GrafanaAccess,
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    folder: str = "NetAuto",
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> tuple[list[Change], list[str]]:
    """Publish ``dashboards`` (already :func:`prepare`-d) into ``folder``.

    Returns:
        The changes (made, or that would be made with ``dry_run``) and the conflict lines.

    Raises:
        PublishError: Grafana unreachable, credential refused, folder conflict...
    """
    publisher = Publisher(access)
    version = publisher.check_health()
    would = "would " if dry_run else ""
    folder_uid, folder_action = publisher.folder(folder, dry_run=dry_run)
    say(
        f"Grafana {version} at {access.url}, folder {folder!r} (uid {folder_uid})"
        + (f": {would}create" if folder_action == "create" else "")
    )
    changes, conflicts = [], []
    for name, board in dashboards.items():
        try:
            change = publisher.dashboard(name, board, folder_uid, dry_run=dry_run)
        except ConflictError as exc:
            conflicts.append(str(exc))
            continue
        changes.append(change)
        verb = change.action if change.action == "unchanged" else f"{would}{change.action}"
        detail = f"  [{', '.join(change.changed)}]" if change.changed else ""
        say(f"  {verb:<14} {change.uid}  {change.title}  ({name}){detail}")
    return changes, conflicts


def run_publish(
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    folder: str,
    dry_run: bool,
    app: str | None = None,
    datasource_uid: str = DATASOURCE_UID,
    env: Mapping[str, str] | None = None,
) -> int:
    """The CLI's ``--publish``: 0 done, 1 a conflict or Grafana failure, 2 configuration missing."""
    try:
        access = GrafanaAccess.from_env(env)
    except GrafanaConfigError as exc:
        print(f"netauto-statsd dashboards --publish: {exc}", file=sys.stderr)
        return 2
    boards = prepare(dashboards, app=app, datasource_uid=datasource_uid)
    try:
        changes, conflicts = publish(access, boards, folder=folder, dry_run=dry_run)
    except PublishError as exc:
        print(f"netauto-statsd dashboards --publish: {exc}", file=sys.stderr)
        return 1
    for line in conflicts:
        print(f"netauto-statsd dashboards --publish: {line}", file=sys.stderr)
    counts = {action: sum(1 for c in changes if c.action == action) for action in ("create", "update", "unchanged")}
    prefix = "would " if dry_run else ""
    print(
        f"{len(changes)} of {len(boards)} dashboards: {prefix}create {counts['create']}, "
        f"{prefix}update {counts['update']}, unchanged {counts['unchanged']}"
        + (f"; {len(conflicts)} conflict(s)" if conflicts else "")
    )
    return 1 if conflicts else 0


def parse_rendered(rendered: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{file name: JSON text}`` (what the generator renders) as ``{file name: dashboard}``."""
    return {name: json.loads(text) for name, text in rendered.items()}


__all__ = [
    "CLIENT_REQUIREMENT",
    "Change",
    "ConflictError",
    "PublishError",
    "Publisher",
    "parse_rendered",
    "prepare",
    "publish",
    "published_uid",
    "run_publish",
    "slug",
]
