"""Hostile requests to both servers get a 4xx, never a 500: metadata bombs, huge fields, numbers the encoders
cannot honour, stalled uploads; connections whose headers never finish are dropped;
the annotation app is invite-only by default, rate-limits failed logins and keeps others' names private."""

from __future__ import annotations

import socket

import httpx
import pytest
from fastapi import FastAPI, Request

from animated_stickers.eval.human.app import LoginLimiter
from animated_stickers.eval.human.app import create_app as create_annotation_app
from animated_stickers.eval.human.importer import scan_eval
from animated_stickers.eval.human.store import Store
from animated_stickers.serve.bodylimit import BodyLimitMiddleware
from animated_stickers.serve.server import ServerThread
from animated_stickers.serve.settings import ServeSettings
from sampling_support import tiny_server
from test_eval_human_support import make_eval_folder
from test_hostile_inputs import bomb_png
from test_serve_api import sticker_png


@pytest.fixture(scope="module")
def server():
    with tiny_server(ServeSettings(max_batch=2, max_wait_ms=5, queue_size=4, max_upload_bytes=8 * 2**20)) as srv:
        yield srv


@pytest.mark.parametrize("kind, mb", [(b"zTXt", 64), (b"iCCP", 200)])
def test_png_metadata_bomb_upload_is_413(server, tmp_path, kind, mb):
    data = bomb_png(tmp_path / "b.png", kind, mb).read_bytes()
    r = httpx.post(server.url + "/v1/animate", data={"prompt": "wave", "steps": "1"},
                   files={"image": ("b.png", data, "image/png")}, timeout=60)
    assert r.status_code == 413, r.text
    assert "metadata chunk" in r.json()["error"]


def test_two_megabyte_prompt_is_413(server):
    r = httpx.post(server.url + "/v1/animate", data={"prompt": "a" * 2 * 2**20, "steps": "1"},
                   files={"image": ("s.png", sticker_png(), "image/png")}, timeout=60)
    assert r.status_code == 413, r.text


def test_stalled_upload_is_dropped_with_408():
    inner = FastAPI()

    @inner.post("/echo")
    async def echo(request: Request):
        return {"bytes": len(await request.body())}

    app = BodyLimitMiddleware(inner, max_bytes=10_000, read_timeout_s=0.5)
    with ServerThread(app) as srv, socket.create_connection((srv.host, srv.port), timeout=20) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        reply = sock.recv(4096)  # the rest of the body never comes
        assert reply.startswith(b"HTTP/1.1 408"), reply
        assert httpx.post(srv.url + "/echo", content=b"y" * 500).json() == {"bytes": 500}


# ----------------------------------------------------------------------------- annotation app

@pytest.fixture
def annotation(tmp_path):
    store = Store(str(tmp_path / "eval.sqlite"))
    store.add_items("job", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 2), "m"))
    yield store
    store.close()


def test_annotation_app_is_invite_only_and_limits_failed_logins(annotation):
    from fastapi.testclient import TestClient

    invited = annotation.create_annotator("ann")
    client = TestClient(create_annotation_app(annotation, limiter=LoginLimiter(limit=3, window_s=600)))
    r = client.post("/api/login", json={"name": "stranger"})
    assert r.status_code == 401 and "sign-up is closed" in r.json()["detail"]
    assert client.post("/api/login", json={"token": invited["token"]}).status_code == 200
    statuses = [client.post("/api/login", json={"token": f"guess{i}"}).status_code for i in range(4)]
    assert statuses == [401, 401, 429, 429]  # 3 failures in the window (the stranger's included)
    assert client.post("/api/login", json={"token": invited["token"]}).status_code == 429
    # Opt-in sign-up still works.
    open_app = TestClient(create_annotation_app(annotation, signup=True))
    assert open_app.post("/api/login", json={"name": "newcomer"}).status_code == 200


def test_progress_hides_other_annotators(annotation):
    from fastapi.testclient import TestClient

    client = TestClient(create_annotation_app(annotation))
    tokens = {n: annotation.create_annotator(n)["token"] for n in ("ann", "secret-bob")}
    for token in tokens.values():
        assert client.get("/api/jobs/1/next", headers={"X-Annotator-Token": token}).status_code == 200
    body = client.get("/api/jobs/1/progress", headers={"X-Annotator-Token": tokens["ann"]}).json()
    assert "secret-bob" not in str(body)
    assert body["you"] == {"annotator": "ann", "done": 0, "open": 1}
    assert body["totals"] == {"annotators": 2, "done": 0, "open": 2}


# ----------------------------------------------------------------------------- numbers and slow headers (issue 29)

@pytest.mark.parametrize("fields, words", [
    ({"fps": "1e-9"}, "field 'fps'"),
    ({"fps": "1e12"}, "field 'fps'"),
    ({"fps": "60", "format": "gif"}, "GIF plays at most 50 fps"),
    ({"frames": "1000"}, "field 'frames'"),
    ({"seed": str(2**31)}, "field 'seed'"),
    ({"seed": str(2**31 - 1)}, "field 'seed': 2147483647: expected 0 to 2147483646 for 2 stickers"),  # max_batch 2
])
def test_numbers_outside_what_the_encoders_honour_are_422(server, fields, words):
    before = httpx.get(server.url + "/v1/stats").json()
    r = httpx.post(server.url + "/v1/animate", data={"prompt": "wave", "steps": "1", **fields},
                   files={"image": ("s.png", sticker_png(), "image/png")}, timeout=60)
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]
    after = httpx.get(server.url + "/v1/stats").json()
    assert (after["batches"], after["failed"]) == (before["batches"], before["failed"])  # refused before sampling


def _dropped(sock: socket.socket, drip: bytes, every_s: float, within_s: float) -> float:
    """Send `drip` one byte at a time; seconds until the server closes the connection (inf if it never does)."""
    import time

    t0 = time.monotonic()
    sock.settimeout(every_s)
    for i in range(10_000):
        if time.monotonic() - t0 > within_s:
            return float("inf")
        try:
            sock.sendall(drip[i % len(drip): i % len(drip) + 1])
            if sock.recv(1024) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
    return float("inf")


def test_connections_whose_headers_never_finish_are_dropped():
    import concurrent.futures
    import time

    inner = FastAPI()

    @inner.get("/ok")
    async def ok():
        return {"ok": True}

    head = b"GET /ok HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500  # never ends with \r\n\r\n
    with ServerThread(inner, header_timeout_s=0.6) as srv:
        socks = [socket.create_connection((srv.host, srv.port), timeout=5) for _ in range(8)]
        with concurrent.futures.ThreadPoolExecutor(len(socks)) as pool:  # a slowloris crowd, dripping 10 bytes/s
            waited = list(pool.map(lambda s: _dropped(s, head, 0.1, within_s=10), socks))
        assert all(0.4 < w < 3 for w in waited), waited
        silent = socket.create_connection((srv.host, srv.port), timeout=5)  # connects and sends nothing
        t0 = time.monotonic()
        assert silent.recv(10) == b"" and time.monotonic() - t0 < 3
        with socket.create_connection((srv.host, srv.port), timeout=5) as sock:  # slow but within the deadline
            for b in b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n":
                sock.sendall(bytes([b]))
                time.sleep(0.01)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            # The next request on the kept-alive connection gets its own deadline.
            assert _dropped(sock, head, 0.1, within_s=10) < 3
        assert httpx.get(srv.url + "/ok").json() == {"ok": True}
        for s in [*socks, silent]:
            s.close()
