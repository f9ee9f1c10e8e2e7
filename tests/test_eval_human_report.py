"""Consensus count and pass rate (paper Table 1/2) on hand-made answer sets, in memory and through the DB + CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from animated_stickers.eval.human.cli import app
from animated_stickers.eval.human.importer import scan_eval
from animated_stickers.eval.human.report import build_report, consensus, criterion_table, render_markdown
from animated_stickers.eval.human.store import AnnotationItem, Annotator, Assignment, Store
from test_eval_human_support import all_yes, make_eval_folder

T, F = True, False


def test_consensus_counts_only_complete_unanimous_items():
    votes = {
        "all_pass": [T, T, T],
        "all_fail": [F, F, F],
        "split": [T, F, T],  # complete, no consensus
        "two_only": [T, T],  # incomplete: left out of both numbers
        "one_only": [F],  # incomplete
        "nobody": [],  # not started: neither complete nor incomplete
        "four_agree": [T, T, T, T],  # more answers than required still need unanimity
        "four_split": [T, T, T, F],
    }
    assert consensus(votes, required=3) == (3, 2, 5, 2)
    # With 2 required, the two-answer item joins the consensus and "one_only" stays incomplete.
    assert consensus(votes, required=2) == (4, 3, 6, 1)
    # Per-item requirement (items of jobs with different annotators per item).
    assert consensus({"a": [F, F], "b": [T, T]}, required={"a": 2, "b": 3}) == (1, 0, 1, 1)


def test_criterion_table_per_question_and_pass_rate():
    rows = []

    def add(item, question, *passes, reasons=("flicker",)):
        for p in passes:
            rows.append({"item": item, "question": question, "passed": p, "required": 3,
                         "reasons": [] if p else list(reasons)})

    add(1, "existence", T, T, T)
    add(2, "existence", T, T, T)
    add(3, "existence", F, F, F, reasons=("static",))
    add(4, "existence", T, F, T, reasons=("static",))
    add(1, "distortions", F, F, F)
    add(2, "distortions", T, T)  # incomplete
    add(3, "distortions", F, T, F, reasons=("warping", "flicker"))
    table = {s.key: s for s in criterion_table(rows)}
    assert [s.key for s in criterion_table(rows)][:2] == ["existence", "relevance"]  # question order
    e, d, r = table["existence"], table["distortions"], table["relevance"]
    assert (e.consensus, e.passed, e.complete, e.incomplete) == (3, 2, 4, 0)
    assert e.pass_rate == pytest.approx(2 / 3)
    assert e.reasons == {"static": 4}
    assert (d.consensus, d.passed, d.complete, d.incomplete) == (1, 0, 2, 1)
    assert d.pass_rate == 0.0
    assert d.reasons == {"flicker": 5, "warping": 2}
    assert (r.consensus, r.pass_rate) == (0, None)  # nobody answered: no rate, not zero


# ---- through the database ------------------------------------------------------------------------


def answer(store: Store, item_key: str, annotator: str, **fails: list[str]) -> None:
    """Submit one annotator's answers for an item: all "yes" except the given failure reasons."""
    with store.session() as s:
        a = s.scalar(select(Annotator).where(Annotator.name == annotator))
        if a is None:
            a = Annotator(name=annotator, token=f"tok-{annotator}")
            s.add(a)
            s.flush()
        item = s.scalar(select(AnnotationItem).where(AnnotationItem.key == item_key))
        assignment = Assignment(item_id=item.id, annotator_id=a.id)
        s.add(assignment)
        s.flush()
        aid, annotator_id = assignment.id, a.id
    store.submit(aid, annotator_id, answers={**all_yes(), **fails})


@pytest.fixture
def two_model_db(tmp_path):
    """Models A and B, three stickers each, in one job; answers chosen by hand (see the expected numbers)."""
    store = Store(str(tmp_path / "eval.sqlite"))
    store.add_items("cmp", "eval", scan_eval(make_eval_folder(tmp_path / "a", 3), "A"))
    store.add_items("cmp", "eval", scan_eval(make_eval_folder(tmp_path / "b", 3, seed=7), "B"))
    for who in ("x", "y", "z"):
        answer(store, "A/sticker0", who, existence=["static"])
        answer(store, "A/sticker1", who, **({"consistency": ["morphing"]} if who == "x" else {}))
        answer(store, "B/sticker0", who, distortions=["flicker"])
        answer(store, "B/sticker1", who, distortions=["warping"] if who != "y" else ["flicker", "blur"],
               **({"looping": ["jump_at_loop"]} if who == "x" else {}))
        answer(store, "B/sticker2", who)
    for who in ("x", "y"):  # A/sticker2 has only two of its three answers
        answer(store, "A/sticker2", who, existence=["barely_visible"])
    yield store, tmp_path / "eval.sqlite"
    store.close()


def rates(report: dict, model: str) -> dict:
    return {c["key"]: (c["consensus"], c["pass_rate"]) for c in report["models"][model]["criteria"]}


def test_report_numbers_from_database(two_model_db):
    store, _ = two_model_db
    report = build_report(store, job="cmp")
    a, b = rates(report, "A"), rates(report, "B")
    assert a["existence"] == (2, 0.5)  # sticker0 all fail, sticker1 all pass, sticker2 incomplete
    assert a["consistency"] == (1, 1.0)  # sticker1 split
    assert a["relevance"] == (2, 1.0)
    assert b["distortions"] == (3, pytest.approx(1 / 3))  # different reasons still agree on "fail"
    assert b["looping"] == (2, 1.0)
    assert b["existence"] == (3, 1.0)
    ma = report["models"]["A"]
    assert (ma["items"], ma["annotated_items"], ma["fully_annotated"], ma["annotators"]) == (3, 3, 2, 3)
    reasons = {c["key"]: c["reasons"] for c in report["models"]["B"]["criteria"]}
    assert reasons["distortions"] == {"flicker": 4, "warping": 2, "blur": 1}
    md = render_markdown(report)
    assert "| Existence | 2 | 0.500 |" in md and "| Distortions | 3 | 0.333 |" in md


def test_report_cli_markdown_json_and_compare(two_model_db):
    _, db = two_model_db
    runner = CliRunner()
    res = runner.invoke(app, ["report", "--db", str(db), "--compare", "A", "B"])
    assert res.exit_code == 0, res.output
    assert "| Category | A pass rate | B pass rate |" in res.output
    assert "| Existence | 0.500 (n=2) | 1.000 (n=3) |" in res.output
    assert "| Distortions | 1.000 (n=2) | 0.333 (n=3) |" in res.output
    res = runner.invoke(app, ["report", "--db", str(db), "--job", "cmp", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert rates(data, "A")["existence"] == (2, 0.5)
    assert len(data["models"]["B"]["criteria"]) == 14


@pytest.mark.parametrize("args, needle", [
    (["--compare", "A", "nope"], "--compare nope: no evaluated model"),
    (["--job", "missing"], "--job missing: no such job"),
])
def test_report_cli_bad_input_is_one_line(two_model_db, args, needle):
    _, db = two_model_db
    res = CliRunner().invoke(app, ["report", "--db", str(db), *args])
    assert res.exit_code == 2
    assert needle in res.output and len(res.output.strip().splitlines()) == 1


def test_report_cli_refuses_missing_database(tmp_path):
    res = CliRunner().invoke(app, ["report", "--db", str(tmp_path / "none.sqlite")])
    assert res.exit_code == 2 and "no such database file" in res.output
    assert not (tmp_path / "none.sqlite").exists()
