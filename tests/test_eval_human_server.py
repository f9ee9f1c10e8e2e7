"""The real app over HTTP on loopback: login, bad requests (4xx, nothing written), media safety, kill -9 and resume."""

from __future__ import annotations

import signal
import sqlite3
import threading

import httpx
import pytest

from animated_stickers.eval.human.app import create_app
from animated_stickers.eval.human.importer import scan_eval, scan_hitl
from animated_stickers.eval.human.report import build_report
from animated_stickers.eval.human.store import Store
from test_eval_human_support import (
    all_yes,
    free_port,
    make_eval_folder,
    make_hitl_folder,
    server_thread,
    start_server_process,
    wait_until_up,
)


@pytest.fixture
def served(tmp_path):
    """A job of 2 stickers + a HITL job of 1 prompt, served by uvicorn in a thread; yields (base URL, db path)."""
    db = tmp_path / "eval.sqlite"
    store = Store(str(db))
    store.add_items("job", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 2), "m"))
    store.add_items("pick", "hitl", scan_hitl(make_hitl_folder(tmp_path / "hitl", 1)))
    with server_thread(create_app(store, signup=True)) as base:
        yield base, db
    store.close()


def login(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    r = client.post("/api/login", json={"name": name})
    assert r.status_code == 200, r.text
    return client


def db_counts(db) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        answers = con.execute("select count(*) from answers").fetchone()[0]
        submitted = con.execute("select count(*) from assignments where submitted_at is not null").fetchone()[0]
        return answers, submitted
    finally:
        con.close()


def test_login_identity_and_pages(served):
    base, _ = served
    ann = login(base, "ann")
    token = ann.cookies["stickers_eval_token"]
    assert httpx.post(f"{base}/api/login", json={"name": "ann"}).status_code == 409  # name taken
    assert httpx.post(f"{base}/api/login", json={"name": "bob", "token": token}).status_code == 401
    assert httpx.post(f"{base}/api/login", json={}).status_code == 401
    assert httpx.get(f"{base}/api/me").status_code == 401
    assert httpx.get(f"{base}/api/me", headers={"X-Annotator-Token": "nope"}).status_code == 401
    me = httpx.get(f"{base}/api/me", headers={"X-Annotator-Token": token}).json()
    assert me["name"] == "ann" and [j["name"] for j in me["jobs"]] == ["job", "pick"]
    # A personal link sets the cookie and drops the token from the address.
    fresh = httpx.Client(base_url=base)
    r = fresh.get(f"/jobs/1?token={token}")
    assert r.status_code == 303 and r.headers["location"] == "/jobs/1"
    assert fresh.cookies["stickers_eval_token"] == token
    assert fresh.get("/jobs/1").text.count("eval.js") == 1 and "hitl.js" in fresh.get("/jobs/2").text
    assert fresh.get("/jobs/9").status_code == 404


def test_bad_requests_get_4xx_and_write_nothing(served):
    base, db = served
    ann, bob = login(base, "ann"), login(base, "bob")
    aid = ann.get("/api/jobs/1/next").json()["assignment"]["assignment_id"]
    url = f"/api/assignments/{aid}"
    without_one = {k: v for k, v in all_yes().items() if k != "outline"}
    cases = [
        ann.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        ann.post(url, content=b"\xff\xfe\x00", headers={"content-type": "application/json"}),
        ann.post(url, json=["yes"]),
        ann.post(url, json={}),
        ann.post(url, json={"answers": without_one}),
        ann.post(url, json={"answers": {**all_yes(), "smell": "yes"}}),
        ann.post(url, json={"answers": {**all_yes(), "outline": ["flicker"]}}),
        ann.post(url, json={"answers": {**all_yes(), "outline": []}}),
        ann.post(url, json={"answers": {**all_yes(), "outline": {"a": 1}}}),
        ann.post(url, json={"answers": "yes"}),
        ann.post(url, json={"answers": all_yes(), "extra": 1}),
        ann.post(url, json={"answers": all_yes(), "comment": "x" * 5000}),
        ann.post(url, json={"answers": all_yes(), "comment": "bad\x00byte"}),
        ann.post(url, json={"selected": [1]}),
        ann.post(url, json={"answers": all_yes(), "selected": [2**70]}),
        ann.post(url, content="answers=yes", headers={"content-type": "application/x-www-form-urlencoded"}),
        ann.post("/api/assignments/0", json={"answers": all_yes()}),
        ann.post("/api/assignments/-3", json={"answers": all_yes()}),
        ann.post("/api/assignments/abc", json={"answers": all_yes()}),
        ann.post(f"/api/assignments/{2**70}", json={"answers": all_yes()}),
        ann.post("/api/assignments/999", json={"answers": all_yes()}),
        bob.post(url, json={"answers": all_yes()}),  # someone else's assignment
        httpx.post(f"{base}{url}", json={"answers": all_yes()}),  # not logged in
        httpx.post(f"{base}{url}", json={"answers": all_yes()}, headers={"X-Annotator-Token": "x" * 500}),
        httpx.post(f"{base}{url}", json={"answers": all_yes()}, headers={"X-Annotator-Token": "a b\tc"}),
        ann.get(f"/api/jobs/{2**70}/next"),
        ann.get("/api/jobs/77/next"),
        ann.get(f"/media/{2**70}"),
        ann.get("/media/999"),
        httpx.get(f"{base}/media/1"),  # media needs a login too
        ann.get("/static/..%2fstore.py"),
        ann.get("/static/%2e%2e/app.py"),
        ann.post("/api/login", json={"name": "x" * 65}),
        ann.post("/api/login", json={"name": "\x00"}),
    ]
    statuses = [r.status_code for r in cases]
    assert all(400 <= s < 500 for s in statuses), statuses
    for r in cases:
        if r.headers.get("content-type", "").startswith("application/json"):
            assert isinstance(r.json()["detail"], str) and "\n" not in r.json()["detail"]
    assert db_counts(db) == (0, 0)
    ok = ann.post(url, json={"answers": {**all_yes(), "outline": ["outline_static"]}})
    assert ok.status_code == 200
    again = ann.post(url, json={"answers": all_yes()})
    assert again.status_code == 409
    assert db_counts(db) == (14, 1)


def test_media_and_hitl_over_http(served):
    base, _ = served
    ann = login(base, "ann")
    cur = ann.get("/api/jobs/2/next").json()
    assert cur["job"]["kind"] == "hitl" and len(cur["assignment"]["candidates"]) == 3
    assert "model" not in str(cur["assignment"])  # annotators do not see which teacher made what
    first = cur["assignment"]["candidates"][0]
    media = ann.get(first["url"])
    assert media.status_code == 200 and media.headers["content-type"] == "image/webp"
    assert media.content[:4] == b"RIFF" and media.content[8:12] == b"WEBP"
    r = ann.post(f"/api/assignments/{cur['assignment']['assignment_id']}", json={"selected": [first["id"]]})
    assert r.status_code == 200
    done = ann.get("/api/jobs/2/next").json()
    assert done["assignment"] is None and done["progress"]["done"] == 1


def test_concurrent_double_submission_stores_one(served):
    base, db = served
    ann = login(base, "ann")
    aid = ann.get("/api/jobs/1/next").json()["assignment"]["assignment_id"]
    token = ann.cookies["stickers_eval_token"]
    statuses = []

    def post():
        r = httpx.post(f"{base}/api/assignments/{aid}", json={"answers": all_yes()},
                       headers={"X-Annotator-Token": token}, timeout=30)
        statuses.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409, 409, 409, 409, 409]
    assert db_counts(db) == (14, 1)


@pytest.mark.slow
def test_kill_during_submissions_loses_at_most_the_ones_in_flight(tmp_path):
    """Three annotators submit as fast as they can; kill -9 mid-way; every acknowledged answer set survives,
    no answer set is half-written, a restarted server resumes each annotator where they were, and the job
    then completes with full consensus counts."""
    db = tmp_path / "eval.sqlite"
    n_items = 6
    store = Store(str(db))
    store.add_items("job", "eval", scan_eval(make_eval_folder(tmp_path / "gen", n_items), "m"))
    store.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    proc = start_server_process(str(db), port, log)
    wait_until_up(base)
    tokens = [login(base, n).cookies["stickers_eval_token"] for n in ("a", "b", "c")]
    acked: list[int] = []
    lock = threading.Lock()

    def annotate(token: str) -> None:
        h = {"X-Annotator-Token": token}
        try:
            while True:
                cur = httpx.get(f"{base}/api/jobs/1/next", headers=h, timeout=10).json()["assignment"]
                if cur is None:
                    return
                r = httpx.post(f"{base}/api/assignments/{cur['assignment_id']}", json={"answers": all_yes()},
                               headers=h, timeout=10)
                if r.status_code == 200:
                    with lock:
                        acked.append(cur["assignment_id"])
                        if len(acked) == 5:
                            proc.send_signal(signal.SIGKILL)
        except httpx.HTTPError:
            return  # the server died under us

    threads = [threading.Thread(target=annotate, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    proc.wait(10)
    con = sqlite3.connect(db)
    rows = con.execute("select s.id, s.submitted_at is not null, count(a.id) from assignments s "
                       "left join answers a on a.assignment_id = s.id group by s.id").fetchall()
    con.close()
    assert all((done and n == 14) or (not done and n == 0) for _, done, n in rows), rows
    stored = {aid for aid, done, _ in rows if done}
    assert set(acked) <= stored and len(stored) - len(acked) <= 3 and len(stored) < 3 * n_items
    con = sqlite3.connect(db)
    state = {name: con.execute("select coalesce(sum(s.submitted_at is not null), 0), "
                               "max(case when s.submitted_at is null then s.id end) from annotators a "
                               "left join assignments s on s.annotator_id = a.id where a.name = ?", (name,)).fetchone()
             for name in ("a", "b", "c")}
    con.close()

    proc = start_server_process(str(db), port, log)
    try:
        wait_until_up(base)
        # Each annotator resumes exactly where the kill left them: same open item, same count done.
        for name, token in zip(("a", "b", "c"), tokens):
            cur = httpx.get(f"{base}/api/jobs/1/next", headers={"X-Annotator-Token": token}).json()
            done, open_id = state[name]
            assert cur["progress"]["done"] == done
            if open_id is not None:
                assert cur["assignment"]["assignment_id"] == open_id
        threads = [threading.Thread(target=annotate, args=(t,)) for t in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    store = Store(str(db))
    report = build_report(store, "job")
    store.close()
    assert {c["consensus"] for c in report["models"]["m"]["criteria"]} == {n_items}
    assert db_counts(db) == (14 * 3 * n_items, 3 * n_items)
