"""The same store and app on a real PostgreSQL server (a throw-away cluster in the test's tmp dir).

Skips, with the reason, where PostgreSQL's binaries or the psycopg driver are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from animated_stickers.eval.human.app import create_app
from animated_stickers.eval.human.importer import scan_eval
from animated_stickers.eval.human.report import build_report
from animated_stickers.eval.human.store import Conflict, Store
from test_eval_human_support import all_yes, free_port, make_eval_folder, server_thread

pytestmark = pytest.mark.slow


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL driver) is not installed")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    # Not under pytest's tmp dir: that is private to us, and initdb refuses to run as root, so when we are
    # root the cluster runs as the `postgres` user in a folder it can enter.
    data = Path(tempfile.mkdtemp(prefix="stickers-eval-pg-")) / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL")
        prefix = ["runuser", "-u", "postgres", "--"]
        data.parent.chmod(0o777)
    port = free_port()
    def run(*cmd):
        return subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data.parent / "pg.log"), "-o",
            f"-p {port} -k {data.parent} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        shutil.rmtree(data.parent, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL cluster: {getattr(e, 'stderr', b'') or e}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(data.parent, ignore_errors=True)


def test_store_rules_hold_on_postgres(pg_url, tmp_path):
    store = Store(pg_url)
    store.add_items("job", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 2), "m"))
    ids = [store.create_annotator(f"a{i}")["id"] for i in range(6)]
    got: dict[int, dict | None] = {}
    threads = [threading.Thread(target=lambda a=a: got.__setitem__(a, store.next_assignment(1, a))) for a in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assigned = {a: g for a, g in got.items() if g is not None}
    assert len(assigned) == 6
    assert Counter(g["prompt"] for g in assigned.values()) == {"a cat waving": 3, "a dog jumping": 3}
    for owner, g in assigned.items():
        store.submit(g["assignment_id"], owner, answers={**all_yes(), "looping": ["jump_at_loop"]})
    with pytest.raises(Conflict):
        store.submit(assigned[ids[0]]["assignment_id"], ids[0], answers=all_yes())
    # Each annotator answered one item; every item has 3 answers that agree.
    report = build_report(store, "job")
    rows = {c["key"]: (c["consensus"], c["pass_rate"]) for c in report["models"]["m"]["criteria"]}
    assert rows["looping"] == (2, 0.0) and rows["existence"] == (2, 1.0)
    with server_thread(create_app(store, signup=True)) as base:
        client = httpx.Client(base_url=base)
        assert client.post("/api/login", json={"name": "web"}).status_code == 200
        assert client.get("/api/jobs/1/next").json()["assignment"] is None  # all items have 3 annotators
        assert client.post("/api/assignments/1", json={"answers": {"existence": "yes"}}).status_code == 403
    store.close()
