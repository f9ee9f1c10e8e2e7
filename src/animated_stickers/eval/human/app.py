"""The annotation web app: FastAPI JSON API + plain HTML/JS pages from static/ (no build step).

Pages: /            login and job list
       /jobs/{id}   one sticker at a time with the 14 questions (eval) or six candidates (hitl)
API:   POST /api/login {name[, token]} | {token}      -> {name, token}; sets the annotator cookie
       POST /api/logout
       GET  /api/me                                    -> annotator and jobs with progress
       GET  /api/questions                             -> the questions and failure reasons
       GET  /api/jobs/{id}/next                        -> the current assignment (resumes an open one)
       POST /api/assignments/{id} {answers | selected/none, comment} -> progress
       GET  /api/jobs/{id}/progress                    -> your own counts + the job's totals (no names)
       GET  /media/{candidate_id}                      -> the animation file (only from its job's folder)
Identity: the annotator's token, from the cookie, an X-Annotator-Token header, or ?token= on any page
(which sets the cookie and redirects). Every refusal is a 4xx JSON {"detail": one line}.
Trust: invite-only by default (tokens come from `stickers eval human add-annotator`); sign-up by name
only with `signup=True` (`--signup`). Failed logins are rate-limited per client address (429).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError

from .questions import questions_as_json
from .store import EVAL, MAX_ID, MEDIA_TYPES, Store, StoreError, Unauthorized

LOGIN_FAILURES = 10  # failed logins per client address within LOGIN_WINDOW_S before 429
LOGIN_WINDOW_S = 60.0


class TooManyAttempts(StoreError):
    status = 429


class LoginLimiter:
    """Failed login attempts per client address in a sliding window (in memory: one server process)."""

    def __init__(self, limit: int = LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self.failures: dict[str, deque[float]] = defaultdict(deque)

    def check(self, client: str) -> None:
        q, now = self.failures[client], time.monotonic()
        while q and q[0] < now - self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            raise TooManyAttempts(f"too many failed logins from {client}: retry in {self.window_s:g} s")

    def failed(self, client: str) -> None:
        self.failures[client].append(time.monotonic())

STATIC = Path(__file__).parent / "static"
COOKIE = "stickers_eval_token"
Id = Annotated[int, PathParam(ge=1, le=MAX_ID)]


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=200)
    token: str | None = Field(None, max_length=200)


class Submission(BaseModel):
    """Eval: answers = {question: "yes" | [reason, ...]}. HITL: selected = [candidate id, ...] or none = true."""

    model_config = ConfigDict(extra="forbid")
    answers: dict[str, Any] | None = None
    selected: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(None, max_length=64)
    none: bool = False
    comment: str | None = Field(None, max_length=2000)


def create_app(store: Store | str, signup: bool = False, limiter: LoginLimiter | None = None) -> FastAPI:
    """The app over a Store (or a database URL). Invite-only by default: only annotators created by the
    CLI (add-annotator) log in; `signup=True` lets anyone sign up by name."""
    store = Store(store) if isinstance(store, str) else store
    app = FastAPI(title="Animated stickers: human evaluation", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    _install_errors(app)
    for router in (pages(store), logins(store, signup, limiter or LoginLimiter()), jobs(store), media(store)):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _install_errors(app: FastAPI) -> None:
    """Every refusal one JSON line {"detail": ...} with its 4xx (or 503 for a busy database)."""

    @app.exception_handler(StoreError)
    async def _store_error(_req: Request, e: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        return JSONResponse({"detail": f"{where}: {err.get('msg', 'invalid request')}"}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _busy(_req: Request, e: OperationalError) -> JSONResponse:
        # A locked or unreachable database: nothing was written; the client may retry.
        return JSONResponse({"detail": f"database unavailable, retry: {str(e.orig).splitlines()[0]}"},
                            status_code=503)


def _who(store: Store, request: Request) -> dict:
    """The annotator of a request: token from the X-Annotator-Token header, the cookie or ?token=."""
    token = (request.headers.get("x-annotator-token") or request.cookies.get(COOKIE)
             or request.query_params.get("token"))
    return store.annotator_by_token(token)


def pages(store: Store) -> APIRouter:
    """GET / (login and job list) and /jobs/{id} (the job's page); ?token= logs in and drops the token."""
    api = APIRouter(include_in_schema=False)

    def page(request: Request, name: str):
        token = request.query_params.get("token")
        if token:  # log in from a personal link, then drop the token from the address bar
            a = store.annotator_by_token(token)
            resp = RedirectResponse(request.url.path, status_code=303)
            _set_cookie(resp, a["token"])
            return resp
        return FileResponse(STATIC / name, headers={"Cache-Control": "no-store"})

    @api.get("/")
    def index(request: Request):
        return page(request, "index.html")

    @api.get("/jobs/{job_id}")
    def job_page(request: Request, job_id: Id):
        kind = store.job(job_id)["kind"]
        return page(request, "eval.html" if kind == EVAL else "hitl.html")

    return api


def logins(store: Store, signup: bool, limiter: LoginLimiter) -> APIRouter:
    """POST /api/login (rate-limited per address), /api/logout."""
    api = APIRouter()

    @api.post("/api/login")
    def login(request: Request, body: Login):
        client = request.client.host if request.client else "unknown"
        limiter.check(client)
        try:
            return _login(store, signup, body)
        except StoreError:
            limiter.failed(client)
            raise

    @api.post("/api/logout")
    def logout():
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE)
        return resp

    return api


def _login(store: Store, signup: bool, body: Login) -> JSONResponse:
    """A token logs its annotator in; a name alone signs up (only with `signup`)."""
    if body.token:
        a = store.annotator_by_token(body.token)
        if body.name and body.name.strip() != a["name"]:
            raise Unauthorized("that token belongs to another name")
    elif body.name:
        if not signup:
            raise Unauthorized("sign-up is closed; ask for your personal link or token")
        a = store.create_annotator(body.name)
    else:
        raise Unauthorized("send a name (new annotator) or your token")
    resp = JSONResponse({"name": a["name"], "token": a["token"]})
    _set_cookie(resp, a["token"])
    return resp


def jobs(store: Store) -> APIRouter:
    """The annotator's API: /api/me, /api/questions, the next assignment, answers, progress."""
    api = APIRouter()

    @api.get("/api/me")
    def me(request: Request):
        a = _who(store, request)
        rows = [{**j, "progress": store.progress(j["id"], a["id"])} for j in store.jobs()]
        return {"name": a["name"], "token": a["token"], "jobs": rows}

    @api.get("/api/questions")
    def questions():
        return questions_as_json()

    @api.get("/api/jobs/{job_id}/next")
    def next_item(request: Request, job_id: Id):
        a = _who(store, request)
        job = store.job(job_id)
        current = store.next_assignment(job_id, a["id"])
        if current is not None:
            for c in current["candidates"]:
                c["url"] = f"/media/{c['id']}"
        return {"job": {"id": job["id"], "name": job["name"], "kind": job["kind"]}, "annotator": a["name"],
                "assignment": current, "progress": store.progress(job_id, a["id"])}

    @api.post("/api/assignments/{assignment_id}")
    def submit(request: Request, assignment_id: Id, body: Submission):
        a = _who(store, request)
        store.submit(assignment_id, a["id"], answers=body.answers, selected=body.selected, none=body.none,
                     comment=body.comment)
        return {"ok": True, "assignment_id": assignment_id}

    @api.get("/api/jobs/{job_id}/progress")
    def job_progress(request: Request, job_id: Id):
        # Other annotators' names and counts stay private (the CLI report has them): your own row + totals.
        a = _who(store, request)
        rows = store.job_progress(job_id)
        mine = next((r for r in rows if r["annotator"] == a["name"]), {"annotator": a["name"], "done": 0, "open": 0})
        totals = {"annotators": len(rows), "done": sum(r["done"] for r in rows), "open": sum(r["open"] for r in rows)}
        return {"job": store.job(job_id), "you": mine, "totals": totals}

    return api


def media(store: Store) -> APIRouter:
    """GET /media/{candidate_id}: a candidate's animation, only from its job's folder, to annotators."""
    api = APIRouter()

    @api.get("/media/{candidate_id}")
    def candidate(request: Request, candidate_id: Id):
        _who(store, request)
        path = store.media_file(candidate_id)
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix.lower()],
                            headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"})

    return api


def _set_cookie(resp, token: str) -> None:
    resp.set_cookie(COOKIE, token, max_age=180 * 24 * 3600, httponly=True, samesite="lax")


def serve(db: str, host: str = "127.0.0.1", port: int = 8000, signup: bool = False) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    from ...serve.bodylimit import UVICORN_LIMITS

    app = create_app(Store(db), signup=signup)
    uvicorn.run(app, host=host, port=port, log_level="info", **UVICORN_LIMITS)
