"""A local stand-in for Grafana's HTTP API: a real socket in a thread, the documented endpoints only.

Grafana cannot run on these machines, so the publishing and annotation tests
talk to this server. It implements what the Grafana HTTP API reference documents
for the endpoints we call - authentication (``Authorization: Bearer <token>``
or basic auth; 401 without, 403 for a role that may not write), ``GET
/api/health``, ``GET /api/folders/:uid``, ``POST /api/folders``, ``GET
/api/search``, ``GET /api/dashboards/uid/:uid``, ``POST /api/dashboards/db``
(400 on a provisioned dashboard, 412 ``version-mismatch`` / ``name-exists``)
and ``POST /api/annotations`` - checks each request's shape as documented,
and records every request so tests can assert method, path, headers and body.
A request whose shape is wrong gets HTTP 400 and is listed in ``violations``.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSON = dict[str, Any]


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class GrafanaState:
    """What the fake Grafana holds; tests may seed it (e.g. a provisioned dashboard)."""

    folders: dict[str, JSON] = field(default_factory=dict)
    dashboards: dict[str, JSON] = field(default_factory=dict)  # uid -> {"dashboard", "folderUid", "provisioned"}
    annotations: list[JSON] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeGrafana:
    """Start with ``FakeGrafana(token=...)`` or ``(user=..., password=...)``; ``close()`` when done.

    Args:
        token: accepted bearer token.
        user, password: accepted basic-auth account.
        can_write: False answers writes with 403, as for a Viewer.
    """

    def __init__(
        self, *, token: str | None = None, user: str | None = None, password: str | None = None, can_write: bool = True
    ) -> None:
        self.token, self.user, self.password, self.can_write = token, user, password, can_write
        self.state = GrafanaState()
        self.requests: list[Request] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                owner._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815 (http.server's names)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-grafana", daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def writes(self) -> list[Request]:
        """Requests that change state (everything but GET)."""
        return [r for r in self.requests if r.method != "GET"]

    # ------------------------------------------------------------------ plumbing
    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Request(handler.command, parts.path, parse_qs(parts.query), dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(request)
            status, payload = self._route(request)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _bad(self, request: Request, why: str) -> tuple[int, JSON]:
        self.violations.append(f"{request.method} {request.path}: {why}")
        return 400, {"message": f"bad request: {why}"}

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if self.token is not None and header == f"Bearer {self.token}":
            return True
        if self.user is not None and header.startswith("Basic "):
            decoded = base64.b64decode(header[6:]).decode()
            return decoded == f"{self.user}:{self.password}"
        return False

    def _route(self, request: Request) -> tuple[int, Any]:
        path, method = request.path, request.method
        if path == "/api/health" and method == "GET":  # documented as unauthenticated
            return 200, {"commit": "fake", "database": "ok", "version": "12.1.1"}
        if not self._authorized(request):
            return 401, {"message": "Unauthorized"}
        if method != "GET" and request.headers.get("Content-Type", "").split(";")[0] != "application/json":
            return self._bad(request, "Content-Type is not application/json")
        if method != "GET" and not self.can_write:
            return 403, {"message": "You'll need additional permissions to perform this action."}
        if path.startswith("/api/folders/") and method == "GET":
            return self._get_folder(path.removeprefix("/api/folders/"))
        if path == "/api/folders" and method == "POST":
            return self._create_folder(request)
        if path == "/api/search" and method == "GET":
            return self._search(request)
        if path.startswith("/api/dashboards/uid/") and method == "GET":
            return self._get_dashboard(path.removeprefix("/api/dashboards/uid/"))
        if path == "/api/dashboards/db" and method == "POST":
            return self._save_dashboard(request)
        if path == "/api/annotations" and method == "POST":
            return self._add_annotation(request)
        return 404, {"message": "Not found"}

    # ------------------------------------------------------------------ folders
    def _get_folder(self, uid: str) -> tuple[int, JSON]:
        folder = self.state.folders.get(uid)
        return (200, folder) if folder else (404, {"message": "folder not found", "status": "not-found"})

    def _create_folder(self, request: Request) -> tuple[int, JSON]:
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"]:
            return self._bad(request, "folder body needs a title")
        if set(body) - {"uid", "title", "description", "parentUid"}:
            return self._bad(request, f"unknown folder fields {sorted(set(body) - {'uid', 'title'})}")
        uid = body.get("uid") or f"generated{self.state.next_id}"
        if len(uid) > 40:
            return self._bad(request, "uid longer than 40 characters")
        if uid in self.state.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        if any(f["title"] == body["title"] for f in self.state.folders.values()):
            return 409, {"message": "a folder with the same name already exists"}
        folder = {"id": self.state.new_id(), "uid": uid, "title": body["title"], "url": f"/dashboards/f/{uid}/"}
        self.state.folders[uid] = folder
        return 200, folder

    def _search(self, request: Request) -> tuple[int, list[JSON]]:
        query = request.query.get("query", [""])[0].lower()
        kind = request.query.get("type", [""])[0]
        hits: list[JSON] = []
        if kind in ("", "dash-folder"):
            hits += [
                {"uid": f["uid"], "title": f["title"], "type": "dash-folder"}
                for f in self.state.folders.values()
                if query in f["title"].lower()
            ]
        if kind in ("", "dash-db"):
            hits += [
                {"uid": uid, "title": d["dashboard"]["title"], "type": "dash-db", "folderUid": d["folderUid"]}
                for uid, d in self.state.dashboards.items()
                if query in d["dashboard"]["title"].lower()
            ]
        return 200, hits

    # ------------------------------------------------------------------ dashboards
    def _get_dashboard(self, uid: str) -> tuple[int, JSON]:
        stored = self.state.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        folder = self.state.folders.get(stored["folderUid"], {})
        meta = {
            "folderUid": stored["folderUid"],
            "folderTitle": folder.get("title", "General"),
            "provisioned": stored.get("provisioned", False),
            "version": stored["dashboard"]["version"],
        }
        return 200, {"dashboard": stored["dashboard"], "meta": meta}

    def _save_dashboard(self, request: Request) -> tuple[int, JSON]:
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            return self._bad(request, "body needs a dashboard object")
        if set(body) - {"dashboard", "folderUid", "folderId", "message", "overwrite"}:
            return self._bad(request, f"unknown fields {sorted(body)}")
        board, folder_uid = dict(body["dashboard"]), body.get("folderUid", "")
        if not board.get("title") or not board.get("uid"):
            return self._bad(request, "dashboard needs a title and a uid")
        if folder_uid and folder_uid not in self.state.folders:
            return 400, {"message": "folder not found"}
        stored = self.state.dashboards.get(board["uid"])
        overwrite = bool(body.get("overwrite"))
        if stored is None and board.get("id") is not None:
            return 404, {"message": "Dashboard not found", "status": "not-found"}
        if stored is not None:
            if stored.get("provisioned"):
                return 400, {"message": "Cannot save provisioned dashboard"}
            if not overwrite and board.get("version") != stored["dashboard"]["version"]:
                return 412, {
                    "message": "The dashboard has been changed by someone else",
                    "status": "version-mismatch",
                }
        for uid, other in self.state.dashboards.items():
            if (
                uid != board["uid"]
                and other["folderUid"] == folder_uid
                and other["dashboard"]["title"] == board["title"]
                and not overwrite
            ):
                return 412, {
                    "message": "A dashboard with the same name in the folder already exists",
                    "status": "name-exists",
                }
        version = stored["dashboard"]["version"] + 1 if stored else 1
        board["id"] = stored["dashboard"]["id"] if stored else self.state.new_id()
        board["version"] = version
        self.state.dashboards[board["uid"]] = {"dashboard": board, "folderUid": folder_uid, "provisioned": False}
        return 200, {
            "id": board["id"],
            "uid": board["uid"],
            "url": f"/d/{board['uid']}/x",
            "status": "success",
            "version": version,
            "slug": "x",
        }

    # ------------------------------------------------------------------ annotations
    def _add_annotation(self, request: Request) -> tuple[int, JSON]:
        body = request.body
        if not isinstance(body, dict):
            return self._bad(request, "annotation body is not an object")
        allowed = {"dashboardUID", "dashboardId", "panelId", "time", "timeEnd", "tags", "text"}
        if set(body) - allowed:
            return self._bad(request, f"unknown annotation fields {sorted(set(body) - allowed)}")
        if not isinstance(body.get("text"), str) or not body["text"]:
            return self._bad(request, "annotation needs a text")
        if not isinstance(body.get("time"), int) or body["time"] < 10**12:
            return self._bad(request, "time must be epoch milliseconds")
        if not isinstance(body.get("tags", []), list) or not all(isinstance(t, str) for t in body.get("tags", [])):
            return self._bad(request, "tags must be a list of strings")
        annotation_id = self.state.new_id()
        self.state.annotations.append({**body, "id": annotation_id})
        return 200, {"message": "Annotation added", "id": annotation_id}
