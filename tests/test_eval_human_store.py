"""Storage: importing folders, questions and answer validation, assignment rules, constraints, media safety."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from animated_stickers.errors import UserError
from animated_stickers.eval.human.cli import app
from animated_stickers.eval.human.importer import scan_eval, scan_hitl
from animated_stickers.eval.human.questions import (
    MOTION_QUESTIONS,
    PROMPT_QUESTIONS,
    QUESTIONS,
    AnswerError,
    parse_verdicts,
)
from animated_stickers.eval.human.store import (
    Answer,
    Assignment,
    Candidate,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Store,
)
from test_eval_human_support import all_yes, make_eval_folder, make_hitl_folder


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "eval.sqlite"))
    yield s
    s.close()


def test_questions_follow_the_paper():
    assert [q.key for q in MOTION_QUESTIONS] == ["existence", "relevance", "consistency", "distortions",
                                                 "motion_curves", "outline", "looping", "clipping", "expression",
                                                 "background"]
    assert [q.key for q in PROMPT_QUESTIONS] == ["subjects", "actions", "composition", "attributes"]
    assert MOTION_QUESTIONS[6].text == "Does the animation play in a continuous loop?"
    for q in QUESTIONS:
        assert q.text.endswith("?") and len(q.reasons) >= 3 and "yes" not in q.reason_keys


def test_parse_verdicts_accepts_yes_or_reasons_and_rejects_the_rest():
    raw = {**all_yes(), "looping": ["jump_at_loop", "other", "jump_at_loop"]}
    out = parse_verdicts(raw)
    assert out["existence"] == (True, []) and out["looping"] == (False, ["jump_at_loop", "other"])
    bad = [
        {k: v for k, v in all_yes().items() if k != "background"},  # missing
        {**all_yes(), "smell": "yes"},  # unknown question
        {**all_yes(), "looping": []},  # neither yes nor a reason
        {**all_yes(), "looping": ["yes", "jump_at_loop"]},  # yes mixed with reasons
        {**all_yes(), "looping": ["flicker"]},  # a reason of another question
        {**all_yes(), "looping": "no"},
        {**all_yes(), "looping": [1]},
        ["yes"] * 14,
    ]
    for b in bad:
        with pytest.raises(AnswerError):
            parse_verdicts(b)


def test_import_eval_folder_and_cli(tmp_path, store):
    folder = make_eval_folder(tmp_path / "gen", 3)
    items = scan_eval(folder, "m1")
    assert [i.key for i in items] == ["m1/sticker0", "m1/sticker1", "m1/sticker2"]
    assert items[1].prompt == "a dog jumping" and items[1].candidates[0].media == "sticker1.webp"
    res = CliRunner().invoke(app, ["import-job", str(folder), "--name", "j", "--model", "m2",
                                   "--db", str(tmp_path / "eval.sqlite")])
    assert res.exit_code == 0, res.output
    assert "added 3 items, 3 files" in res.output
    assert store.jobs() == [{"id": 1, "name": "j", "kind": "eval", "items": 3, "annotators_per_item": 3}]
    # Same folder, same model again: refused as a whole, nothing added.
    with pytest.raises(UserError, match="already in job"):
        store.add_items("j", "eval", scan_eval(folder, "m2"))
    assert store.jobs()[0]["items"] == 3


def test_import_hitl_groups_candidates_by_stem(tmp_path, store):
    items = scan_hitl(make_hitl_folder(tmp_path / "h", 2, models=("a", "b", "c", "d", "e", "f")))
    assert len(items) == 2 and all(len(i.candidates) == 6 for i in items)
    assert {c.model for c in items[0].candidates} == set("abcdef")
    assert all(c.media.endswith(f"/{i.key}.webp") for i in items for c in i.candidates)
    assert [c.model for c in items[0].candidates] == [c.model for c in scan_hitl(tmp_path / "h")[0].candidates]
    store.add_items("h", "hitl", items)
    with pytest.raises(UserError, match="is a hitl job"):
        store.add_items("h", "eval", scan_eval(make_eval_folder(tmp_path / "e", 1), "m"))


@pytest.mark.parametrize("breakage, needle", [
    (lambda d: (d / "sticker1.webp").unlink(), "no animation for 'sticker1.png'"),
    (lambda d: (d / "prompts.json").write_text("{not json"), "not valid JSON"),
    (lambda d: (d / "prompts.json").write_text(json.dumps([{"image": "sticker0.png"}])), "entry 0: expected"),
    (lambda d: (d / "prompts.json").write_text(json.dumps([{"image": "sticker0.png", "prompt": "x"},
                                                           {"image": "sticker0.jpg", "prompt": "y"}])),
     "entry 1: image stem 'sticker0' appears twice"),
    (lambda d: (d / "prompts.json").unlink(), "prompts.json' does not exist"),
])
def test_import_bad_folder_is_one_line_and_writes_nothing(tmp_path, breakage, needle):
    folder = make_eval_folder(tmp_path / "gen", 2)
    breakage(folder)
    db = tmp_path / "eval.sqlite"
    res = CliRunner().invoke(app, ["import-job", str(folder), "--name", "j", "--model", "m", "--db", str(db)])
    assert res.exit_code == 2, res.output
    assert needle in res.output and len(res.output.strip().splitlines()) == 1


def test_import_refuses_links_out_of_the_folder(tmp_path, store):
    outside = make_eval_folder(tmp_path / "outside", 1)
    folder = make_eval_folder(tmp_path / "gen", 2)
    (folder / "sticker1.webp").unlink()
    (folder / "sticker1.webp").symlink_to(outside / "sticker0.webp")
    with pytest.raises(UserError, match="links out of the folder"):
        store.add_items("j", "eval", scan_eval(folder, "m"))
    assert store.jobs() == []


def _annotators(store, *names):
    return [store.create_annotator(n)["id"] for n in names]


def test_each_item_goes_to_three_annotators_and_resumes(tmp_path, store):
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 2), "m"))
    ids = _annotators(store, "a", "b", "c", "d")
    first = store.next_assignment(1, ids[0])
    assert store.next_assignment(1, ids[0]) == first  # an open assignment comes back (resume)
    store.submit(first["assignment_id"], ids[0], answers=all_yes())
    second = store.next_assignment(1, ids[0])
    assert second["assignment_id"] != first["assignment_id"] and second["prompt"] != first["prompt"]
    store.submit(second["assignment_id"], ids[0], answers=all_yes())
    assert store.next_assignment(1, ids[0]) is None  # never the same item twice
    assert store.progress(1, ids[0]) == {"done": 2, "total": 2, "job_done": 2, "job_total": 6}
    for who in ids[1:3]:
        for _ in range(2):
            a = store.next_assignment(1, who)
            store.submit(a["assignment_id"], who, answers=all_yes())
    assert store.next_assignment(1, ids[3]) is None  # both items already have 3 annotators
    assert store.progress(1, ids[3])["total"] == 0
    assert [r["done"] for r in store.job_progress(1)] == [2, 2, 2]


def test_concurrent_requests_never_over_assign(tmp_path, store):
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 2), "m"))
    ids = _annotators(store, *[f"a{i}" for i in range(8)])
    got, errors = [], []

    def work(aid):
        try:
            got.append(store.next_assignment(1, aid))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(aid,)) for aid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.session() as s:
        per_item = dict(s.execute(select(Assignment.item_id, func.count()).group_by(Assignment.item_id)).all())
    assert per_item == {1: 3, 2: 3}
    assert sum(g is None for g in got) == 2


def test_submission_errors_write_nothing(tmp_path, store):
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 1), "m"))
    a, b = _annotators(store, "a", "b")
    aid = store.next_assignment(1, a)["assignment_id"]
    with pytest.raises(Invalid, match="no answer for question 'attributes'"):
        store.submit(aid, a, answers={k: v for k, v in all_yes().items() if k != "attributes"})
    with pytest.raises(Invalid):
        store.submit(aid, a, selected=[1])
    with pytest.raises(Forbidden):
        store.submit(aid, b, answers=all_yes())
    with pytest.raises(NotFound):
        store.submit(aid + 100, a, answers=all_yes())
    with store.session() as s:
        assert s.scalar(select(func.count(Answer.id))) == 0
        assert s.get(Assignment, aid).submitted_at is None
    store.submit(aid, a, answers={**all_yes(), "clipping": ["cut_by_border"]}, comment="ear cut")
    with pytest.raises(Conflict):
        store.submit(aid, a, answers=all_yes())
    with store.session() as s:
        rows = s.scalars(select(Answer).where(Answer.assignment_id == aid)).all()
        assert len(rows) == 14
        clip = next(r for r in rows if r.question == "clipping")
        assert (clip.passed, clip.reasons) == (False, ["cut_by_border"])
        assert s.get(Assignment, aid).comment == "ear cut"


def test_database_constraints_stop_duplicates(tmp_path, store):
    """Even bypassing the store's checks, the schema refuses a second answer or a second assignment."""
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 1), "m"))
    (a,) = _annotators(store, "a")
    aid = store.next_assignment(1, a)["assignment_id"]
    store.submit(aid, a, answers=all_yes())
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(Answer(assignment_id=aid, question="existence", passed=False, reasons=["static"]))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(Assignment(item_id=1, annotator_id=a))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(Answer(assignment_id=999, question="existence", passed=True, reasons=[]))  # foreign key
    with pytest.raises(Conflict):
        store.create_annotator("a")
    with store.session() as s:
        assert s.scalar(select(func.count(Answer.id))) == 14


def test_hitl_selection_rules(tmp_path, store):
    db = str(tmp_path / "eval.sqlite")
    res = CliRunner().invoke(app, ["import-job", str(make_hitl_folder(tmp_path / "h", 1)), "--name", "h",
                                   "--kind", "hitl", "--db", db])
    assert res.exit_code == 0 and "added 1 items, 3 files" in res.output, res.output
    a, b = _annotators(store, "a", "b")
    cur = store.next_assignment(1, a)
    ids = [c["id"] for c in cur["candidates"]]
    for kwargs in ({}, {"selected": ids[:1], "none": True}, {"selected": [ids[0], 999]},
                   {"answers": all_yes()}):
        with pytest.raises(Invalid):
            store.submit(cur["assignment_id"], a, **kwargs)
    store.submit(cur["assignment_id"], a, selected=[ids[2], ids[0], ids[2]])
    other = store.next_assignment(1, b)
    store.submit(other["assignment_id"], b, none=True)
    votes = {r["candidate"]: r["votes"] for r in store.hitl_votes("h")}
    assert votes == {ids[0]: 1, ids[1]: 0, ids[2]: 1}
    res = CliRunner().invoke(app, ["report", "--db", db, "--job", "h", "--json", "--min-votes", "1"])
    summary = json.loads(res.output)
    assert sorted(r["candidate"] for r in summary["kept"]) == [ids[0], ids[2]]
    assert summary["items"] == 1 and summary["complete_items"] == 0  # 2 of 3 annotators so far
    with store.session() as s:
        rows = s.scalars(select(Answer).order_by(Answer.id)).all()
        assert [(r.question, r.passed, r.selected) for r in rows] == [
            ("shareable", True, sorted([ids[0], ids[2]])), ("shareable", False, [])]


def test_media_is_served_only_from_the_imported_folder(tmp_path, store):
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 1), "m"))
    assert store.media_file(1) == (tmp_path / "gen" / "sticker0.webp").resolve()
    (tmp_path / "secret.webp").write_bytes(b"RIFF")
    with store.session() as s:  # a tampered row must still not reach outside the folder
        s.get(Candidate, 1).media = "../secret.webp"
    with pytest.raises(NotFound):
        store.media_file(1)
    with pytest.raises(NotFound):
        store.media_file(2)


def test_sqlite_runs_in_wal_mode(tmp_path, store):
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 1), "m"))
    con = sqlite3.connect(tmp_path / "eval.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_release_stale_gives_abandoned_items_to_others(tmp_path, store):
    store.add_items("j", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 1), "m"), annotators_per_item=1)
    a, b = _annotators(store, "a", "b")
    opened = store.next_assignment(1, a)
    assert store.next_assignment(1, b) is None  # the only slot is held by a
    db = str(tmp_path / "eval.sqlite")
    res = CliRunner().invoke(app, ["release-stale", "--job", "j", "--hours", "1", "--db", db])
    assert res.exit_code == 0 and "released 0" in res.output  # a opened it just now
    res = CliRunner().invoke(app, ["release-stale", "--job", "j", "--hours", "0", "--db", db])
    assert res.exit_code == 0 and "released 1" in res.output
    assert store.next_assignment(1, b)["prompt"] == opened["prompt"]
    with pytest.raises(NotFound):
        store.submit(opened["assignment_id"], a, answers=all_yes())
