"""Headless Chromium (Playwright) clicks through an evaluation job and a HITL job; the answers must land in the DB."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from animated_stickers.eval.human.app import create_app
from animated_stickers.eval.human.importer import scan_eval, scan_hitl
from animated_stickers.eval.human.questions import QUESTIONS
from animated_stickers.eval.human.store import AnnotationItem, Answer, Assignment, Store
from test_eval_human_support import make_eval_folder, make_hitl_folder, server_thread

pytestmark = pytest.mark.slow


def answer_all_yes(page, skip=()):
    for q in QUESTIONS:
        if q.key not in skip:
            page.check(f'input[name="{q.key}"][value="yes"]')


def test_click_through_eval_and_hitl_jobs(browser, tmp_path):
    store = Store(str(tmp_path / "eval.sqlite"))
    store.add_items("job", "eval", scan_eval(make_eval_folder(tmp_path / "gen", 2), "m"))
    store.add_items("pick", "hitl", scan_hitl(make_hitl_folder(tmp_path / "hitl", 1)))
    errors: list[str] = []
    with server_thread(create_app(store, signup=True)) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base)
        page.fill("#name", "Alice")
        page.click("#login-button")
        page.click('a.job-link[data-job="job"]')

        # Item 1: the sticker is shown (decoded) on a checkerboard; fail "existence" with two reasons.
        page.wait_for_selector("#sticker img")
        page.wait_for_function("document.querySelector('#sticker img').naturalWidth > 0")
        assert "linear-gradient" in page.eval_on_selector("#sticker", "e => getComputedStyle(e).backgroundImage")
        assert page.is_disabled("#submit")
        first_prompt = page.inner_text("#prompt")
        answer_all_yes(page)
        page.check('input[name="existence"][value="barely_visible"]')  # unticks "yes" for this question
        page.check('input[name="existence"][value="other"]')
        assert not page.is_checked('input[name="existence"][value="yes"]')
        assert page.is_enabled("#submit")
        page.screenshot(path=str(tmp_path / "eval-page.png"), full_page=True)
        page.click("#submit")

        # Item 2: half the answers, reload (the draft survives), finish with a comment.
        page.wait_for_function(f"document.querySelector('#prompt').textContent !== {first_prompt!r}")
        assert page.inner_text("#progress-text").startswith("1 of 2 done")
        second_prompt = page.inner_text("#prompt")
        half = [q.key for q in QUESTIONS[:7]]
        for key in half:
            page.check(f'input[name="{key}"][value="yes"]')
        page.reload()
        page.wait_for_selector("#sticker img")
        assert page.inner_text("#prompt") == second_prompt
        assert all(page.is_checked(f'input[name="{k}"][value="yes"]') for k in half)
        answer_all_yes(page, skip=half)
        page.fill("#comment", "looks good")
        page.click("#submit")
        page.wait_for_selector("#done", state="visible")

        # HITL: pick two of the three candidates.
        page.goto(f"{base}/jobs/2")
        page.wait_for_selector(".cand img")
        cards = page.query_selector_all(".cand")
        assert len(cards) == 3
        picked = [int(cards[0].get_attribute("data-id")), int(cards[2].get_attribute("data-id"))]
        cards[0].click()
        cards[2].click()
        page.check("#none")  # "I wouldn't share any of these" clears the selection...
        assert page.query_selector_all(".cand.selected") == []
        cards[0].click()  # ...and a selection clears it again
        cards[2].click()
        assert not page.is_checked("#none")
        page.screenshot(path=str(tmp_path / "hitl-page.png"))
        page.click("#submit")
        page.wait_for_selector("#done", state="visible")
        page.close()

    assert errors == []
    assert (tmp_path / "eval-page.png").stat().st_size > 10_000
    with store.session() as s:
        done = s.execute(select(Assignment, AnnotationItem).join(AnnotationItem)
                         .where(AnnotationItem.job_id == 1, Assignment.submitted_at.is_not(None))).all()
        by_prompt = {item.prompt: a for a, item in done}
        assert set(by_prompt) == {first_prompt, second_prompt}
        first = {r.question: r for r in s.scalars(select(Answer).where(Answer.assignment_id ==
                                                                       by_prompt[first_prompt].id))}
        assert len(first) == 14
        assert (first["existence"].passed, first["existence"].reasons) == (False, ["barely_visible", "other"])
        assert all(r.passed for k, r in first.items() if k != "existence")
        assert by_prompt[second_prompt].comment == "looks good"
        hitl = s.scalar(select(Answer).where(Answer.question == "shareable"))
        assert hitl.selected == sorted(picked) and hitl.passed
    store.close()
