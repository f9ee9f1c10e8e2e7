"""The HITL loop (paper 2.3, issue 15): `generate` resumes after a kill without duplicates and splits over two
processes; the automatic panel keeps what 2 of 3 raters choose; a human round clicked through in Chromium
ends in a kept set that the student finetune reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animated_stickers.data.animation import read_animation
from animated_stickers.data.splits import split_of
from animated_stickers.eval.human.store import Store
from animated_stickers.eval.thresholds import load_thresholds
from animated_stickers.export.formats import write_animation
from animated_stickers.hitl.candidates import LOG_DIR, MANIFEST_FILE, my_share, plan_jobs, write_manifest
from animated_stickers.hitl.prompts import read_prompt_set, still_paths, write_prompt_set
from animated_stickers.hitl.raters import RATERS, agreement, kept_by_majority
from animated_stickers.hitl.select import JUDGMENTS_FILE, job_summary, ratings, select_auto
from animated_stickers.models.checkpoint import save_model
from animated_stickers.prompts_file import PROMPTS_FILE
from sampling_support import sticker, tiny_model

TEACHERS = ("t1", "t2", "t3")
# Candidate slot -> motion of the still (px, kind): static, small moves that pass, large ones that lose identity.
MOTIONS = [(0, "bounce"), (1, "bounce"), (2, "bounce"), (1, "slide"), (3, "slide"), (6, "bounce")]
TRAIN_STEMS = [s for s in ("1f600", "1f601", "1f603", "1f604", "1f605", "1f606", "1f607") if split_of(s) == "train"]


def make_prompts(root: Path, n: int, size: int = 64) -> Path:
    """n prompts over three train-split stills (named by code points, as Fluent stills are)."""
    stills = root / "stills"
    stills.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(TRAIN_STEMS[:3]):
        padded = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # room to move without leaving the canvas
        padded.alpha_composite(sticker(40, 34, seed=i), (12, 15))
        padded.save(stills / f"{stem}.png")
    write_prompt_set(root / "prompts", still_paths(stills, None, "train"), n, seed=0, size=size)
    return root / "prompts"


def moving(still: Image.Image, amplitude: float, kind: str) -> list[Image.Image]:
    """8 looping frames of the still: shifted up and down (`bounce`), left and right (`slide`) or static."""
    out = []
    for t in range(8):
        d = int(round(amplitude * np.sin(2 * np.pi * t / 8)))
        canvas = Image.new("RGBA", still.size, (0, 0, 0, 0))
        canvas.alpha_composite(still, (0, d) if kind == "bounce" else (d, 0))
        out.append(canvas)
    return out


def make_candidates(root: Path, prompts: Path) -> Path:
    """A finished candidates folder without a model: per job a simple motion of the prompt's still."""
    entries = read_prompt_set(prompts)
    jobs = plan_jobs(entries, list(TEACHERS), 6)
    out = root / "candidates"
    for j in jobs:
        still = Image.open(prompts / entries[j.prompt_index]["image"]).convert("RGBA")
        amplitude, kind = MOTIONS[j.slot]
        (out / j.folder).mkdir(parents=True, exist_ok=True)
        write_animation(moving(still, amplitude, kind), out / j.rel, fps=8.0)
    (out / PROMPTS_FILE).write_text(json.dumps(entries))
    write_manifest(out, jobs, {"prompts": str(prompts.resolve()), "n_prompts": len(entries),
                               "teachers": list(TEACHERS), "per_prompt": 6, "seed": 0})
    return out


# ---- generate: kill, resume on two processes -----------------------------------------------------

@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory):
    """Generate 24 candidates (4 prompts x 6, three tiny random teachers); SIGKILL the first run after a few
    files, leave a temp file as a write cut short would, then resume with two processes (gloo)."""
    root = tmp_path_factory.mktemp("gen")
    prompts = make_prompts(root, 4)
    models = []
    for i, name in enumerate(TEACHERS):
        save_model(tiny_model(seed=i), root / "models" / name)
        models += ["--model", f"{name}={root / 'models' / name}"]
    out = root / "candidates"
    args = ["animated_stickers.cli", "hitl", "generate", "--prompts", str(prompts), "--out", str(out),
            "--steps", "2", "--threads", "1", *models]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.Popen([sys.executable, "-m", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while len(list(out.glob("*@*/*.webp"))) < 3:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    before = {p.relative_to(out).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("*@*/*.webp")}
    (out / "t2@1" / ".p0003.webp.cut.part").write_bytes(b"RIFF")  # what SIGKILL mid-write leaves
    resumed = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                              "-m", *args], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    logs = [json.loads(line) for f in sorted((out / LOG_DIR).glob("rank-*.jsonl"))
            for line in f.read_text().splitlines() if line.endswith("}")]
    jobs = plan_jobs(read_prompt_set(prompts), list(TEACHERS), 6)
    return {"out": out, "before": before, "logs": logs, "jobs": jobs, "stdout": resumed.stdout}


@pytest.mark.slow
def test_generate_resumes_after_a_kill_without_duplicates(killed_then_resumed):
    r = killed_then_resumed
    out, before, jobs = r["out"], r["before"], r["jobs"]
    assert 3 <= len(before) < len(jobs)  # really killed mid-run
    files = sorted(p.relative_to(out).as_posix() for p in out.glob("*@*/*"))
    assert files == sorted(j.rel for j in jobs)  # every candidate once; no temp file left behind
    for rel, stamp in before.items():  # finished before the kill: kept, not made again
        p = out / rel
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp
    made = Counter(row["folder"] + "/" + row["stem"] + ".webp" for row in r["logs"])  # both runs' logs
    assert max(made.values()) == 1
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    assert manifest["candidates"] == manifest["done"] == 24
    per_stem = Counter(j["stem"] for j in manifest["jobs"])
    assert set(per_stem.values()) == {6}
    assert Counter(j["teacher"] for j in manifest["jobs"]) == {t: 8 for t in TEACHERS}
    assert read_animation(out / files[-1]).frames.shape[0] == 8


@pytest.mark.slow
def test_two_processes_split_the_work(killed_then_resumed):
    r = killed_then_resumed
    resumed = [row for row in r["logs"] if row["world"] == 2]
    by_rank = {rank: {row["folder"] + "/" + row["stem"] + ".webp" for row in resumed if row["rank"] == rank}
               for rank in (0, 1)}
    assert by_rank[0] and by_rank[1] and not by_rank[0] & by_rank[1]
    for rank in (0, 1):  # each process made only jobs of its own share (every 2nd job)
        assert by_rank[rank] <= {j.rel for j in my_share(r["jobs"], rank, 2)}
    assert by_rank[0] | by_rank[1] == {j.rel for j in r["jobs"]} - set(r["before"])  # together: all that was left
    assert "process 1/2" in r["stdout"] and "process 2/2" in r["stdout"]


# ---- select --auto ------------------------------------------------------------------------------

def _judgment(scale: dict[str, float] | None = None, motion: dict | None = None) -> dict:
    """All nine criteria just inside their calibrated thresholds, except `scale`d ones (x > 1 fails by x)."""
    crit = {}
    for name, th in load_thresholds().items():
        x = (scale or {}).get(name, 0.95)
        crit[name] = {"value": th.threshold / x if th.higher_is_better else th.threshold * x}
    return {"criteria": crit, "motion": motion}


def test_panel_votes_and_the_two_of_three_rule():
    th = load_thresholds()
    hop = {"prompted": "hopping", "measured": "hopping", "words": ["hopping", "bouncing"]}
    cases = {  # name -> (judgment, expected votes of strict, motion, relevance)
        "clean": (_judgment(motion=hop), (True, True, True)),
        "one criterion a little over": (_judgment({"outline": 1.1}), (False, True, True)),
        "no motion": (_judgment({"existence": 5.0}), (False, False, False)),
        "wrong motion": (_judgment(motion={**hop, "measured": "spinning", "words": ["spinning"]}),
                         (True, True, False)),
        "three a little over": (_judgment({"outline": 1.1, "clipping": 1.1, "background": 1.1}),
                                (False, False, True)),
    }
    for name, (j, expected) in cases.items():
        votes = tuple(r.accepts(j, th) for r in RATERS)
        assert votes == expected, name
        assert kept_by_majority(votes) == (sum(expected) >= 2), name
    assert not kept_by_majority((False, False, True)) and kept_by_majority((True, False, True))


def test_agreement_is_one_for_unanimous_raters_and_chance_corrected():
    assert agreement([[True, True, True], [False, False, False]])["fleiss_kappa"] == pytest.approx(1.0)
    a = agreement([[True, False, False], [False, True, False], [False, False, True]])
    assert a["pairwise"] == pytest.approx(1 / 3) and a["fleiss_kappa"] < 0


def test_select_auto_votes_into_the_store_and_keeps_two_of_three(tmp_path):
    cands = make_candidates(tmp_path, make_prompts(tmp_path, 2))
    store = Store(str(tmp_path / "hitl.sqlite"))
    summary = select_auto(store, "auto-1", cands)
    judged = {json.loads(line)["file"]: json.loads(line) for line in (cands / JUDGMENTS_FILE).read_text().splitlines()}
    th = load_thresholds()
    rows = ratings(store, "auto-1")
    assert len(rows) == 12 and all(set(r["raters"]) == {x.name for x in RATERS} for r in rows)
    kept = set()
    for r in rows:
        rel = Path(r["media"]).relative_to(cands.resolve()).as_posix()
        assert [r["raters"][x.name] for x in RATERS] == [x.accepts(judged[rel], th) for x in RATERS]
        if sum(r["raters"].values()) >= 2:
            kept.add(r["candidate"])
    assert {k["candidate"] for k in summary["kept"]} == kept
    assert 0 < len(kept) < 12  # the static slot-0 candidates never pass; some moving ones do
    assert sum(summary["kept_per_teacher"].values()) == sum(summary["kept_per_bucket"].values()) == len(kept)
    assert summary["agreement"]["n"] == 12 and summary["agreement"]["raters"] == 3
    again = select_auto(store, "auto-1", cands)  # rerun: nothing left to answer, same result
    assert again["kept_count"] == summary["kept_count"]
    store.close()


# ---- a human round in Chromium, then the student finetune ----------------------------------------

@pytest.mark.slow
def test_human_round_in_chromium_ends_in_a_kept_set_finetune_reads(browser, tmp_path):
    from animated_stickers.eval.human.app import create_app
    from animated_stickers.hitl.finetune import finetune
    from animated_stickers.hitl.select import import_candidates
    from animated_stickers.training.banks import read_samples
    from test_eval_human_support import server_thread
    from training_fixtures import make_prepared

    prompts = make_prompts(tmp_path, 1)
    cands = make_candidates(tmp_path, prompts)
    store = Store(str(tmp_path / "hitl.sqlite"))
    job_id = import_candidates(store, "round-1", cands)
    people = [store.create_annotator(n) for n in ("ana", "ben", "cem")]
    with server_thread(create_app(store)) as base:
        picks = {}
        for person, choose in zip(people, ([0, 1], [1, 2], [])):  # candidate 1 gets 2 of 3 votes
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(f"{base}/jobs/{job_id}?token={person['token']}")
            page.wait_for_selector(".cand img")
            cards = page.query_selector_all(".cand")
            assert len(cards) == 6
            ids = [int(c.get_attribute("data-id")) for c in cards]
            picks[person["name"]] = [ids[i] for i in choose]
            for i in choose:
                cards[i].click()
            if not choose:
                page.check("#none")
            page.click("#submit")
            page.wait_for_selector("#done", state="visible")
            ctx.close()
    summary = job_summary(store, "round-1", cands)
    assert [k["candidate"] for k in summary["kept"]] == [picks["ana"][1]] == [picks["ben"][0]]
    assert summary["agreement"]["n"] == 6 and summary["kept_per_bucket"] == {"action": 1}

    model = tmp_path / "init"
    save_model(tiny_model(seed=0), model)
    real = make_prepared(tmp_path / "real")
    shared = tmp_path / "teachers-banks"  # a latent cache the teachers filled: the student reuses it
    shared.mkdir()
    info = finetune(summary["kept"], cands, tmp_path / "student", [real], model, steps=1,
                    overrides=["batch_size=1", "warmup=0", "checkpoint_every=1"], banks=shared)
    assert (tmp_path / "student" / "run" / "banks").resolve() == shared.resolve()
    assert len(list(shared.glob("latents-*.safetensors"))) == 2  # the kept clips' cache and the real data's
    kept_file = Path(summary["kept"][0]["media"])
    exported = tmp_path / "student" / "kept" / kept_file.parent.name / kept_file.stem
    sticker_stem = read_prompt_set(prompts)[0]["sticker"]
    assert (exported / f"{sticker_stem}.webp").read_bytes() == kept_file.read_bytes()
    assert (exported / f"{sticker_stem}.txt").read_text().strip() == read_prompt_set(prompts)[0]["prompt"]
    samples = read_samples([tmp_path / "student" / "kept-shards"], "train", ("animated",))
    assert [(s.meta["source"], s.meta["caption"]) for s in samples] == [("hitl", read_prompt_set(prompts)[0]["prompt"])]
    assert info["kept"] == 1 and info["model"] and (Path(info["model"]) / "config.json").is_file()
    assert json.loads((tmp_path / "student" / "student.json").read_text())["model"] == info["model"]
    store.close()


# ---- prompts and the report's verdict --------------------------------------------------------------

def test_prompts_cover_three_buckets_and_never_take_test_set_stills(tmp_path):
    from animated_stickers.errors import UserError
    from animated_stickers.motion.words import named_motion

    prompts = read_prompt_set(make_prompts(tmp_path, 6))
    assert Counter(e["bucket"] for e in prompts) == {"action": 2, "emotion": 2, "open-ended": 2}
    assert {e["sticker"] for e in prompts} == set(TRAIN_STEMS[:3]) and {e["split"] for e in prompts} == {"train"}
    assert all(named_motion(e["prompt"]) == e["motion_word"] for e in prompts if e["bucket"] == "action")
    twemoji = tmp_path / "test-only" / "rendered" / "twemoji"
    twemoji.mkdir(parents=True)
    sticker(32, 32).save(twemoji / f"{TRAIN_STEMS[0]}.png")
    with pytest.raises(UserError, match="test set"):
        still_paths(twemoji, None, "all")
    with pytest.raises(UserError, match="no heldout stills"):
        still_paths(tmp_path / "stills", None, "heldout")  # all fixture stills are in the train split


def test_report_verdict_needs_the_gain_without_losing_relevance():
    from animated_stickers.hitl.report import verdict

    teachers = {"a": {"all_nine": 0.30, "relevance": 0.5}, "b": {"all_nine": 0.40, "relevance": 0.6}}
    assert "beats its best teacher" in "\n".join(verdict({**teachers, "s": {"all_nine": 0.46, "relevance": 0.6}}, "s"))
    for worse in ({"all_nine": 0.44, "relevance": 0.7}, {"all_nine": 0.50, "relevance": 0.55}):
        assert "does not meet the bar" in "\n".join(verdict({**teachers, "s": worse}, "s"))


def test_a_resume_with_another_motion_setting_is_refused(killed_then_resumed):
    """Candidates of one folder share one sampling setting: prompt motion on, or the model's own motion."""
    from animated_stickers.errors import UserError
    from animated_stickers.hitl.candidates import PLAN_FILE, make_candidates

    out = killed_then_resumed["out"]
    plan = json.loads((out / PLAN_FILE).read_text())
    assert plan["prompt_motion"] is None  # each model's default
    models = {t: Path(p) for t, p in plan["models"].items()}
    with pytest.raises(UserError, match="prompt_motion"):
        make_candidates(Path(plan["prompts"]), models, out, plan["per_prompt"], plan["seed"], plan["steps"],
                        progress=False, prompt_motion=False)


def test_a_motion_model_teacher_makes_motion_path_candidates(tmp_path):
    """Teachers are video models by recipe; a motion model folder given as one runs on the motion path (48
    frames at 24 fps), the video teacher beside it on the video path (8 at 8)."""
    import torch

    from animated_stickers.hitl.candidates import make_candidates
    from animated_stickers.models.motion_net import MotionNet, motion_config, save_motion_model
    from test_motion_pipeline import TINY_MOTION

    prompts = make_prompts(tmp_path, 1)
    torch.manual_seed(0)
    models = {"mo": save_motion_model(MotionNet(motion_config(TINY_MOTION)), tmp_path / "mo"),
              "vi": tmp_path / "vi"}
    save_model(tiny_model(), models["vi"])
    out = tmp_path / "candidates"
    summary = make_candidates(prompts, models, out, per_prompt=2, steps=2, progress=False)
    assert summary["made_now"] == 2
    stem = Path(read_prompt_set(prompts)[0]["image"]).stem
    for teacher, frames, fps in (("mo", 48, 24.0), ("vi", 8, 8.0)):
        clip = read_animation(out / f"{teacher}@0" / f"{stem}.webp")
        assert len(clip.frames) == frames and clip.fps == pytest.approx(fps, rel=0.02)
