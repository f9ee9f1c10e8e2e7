"""Preparing shards: real Fluent fixtures, a user video keyed to alpha, bad files reported, resume, stats."""

import json
import shutil
import tarfile
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from animated_stickers.data.cli import app
from animated_stickers.data.shards import PrepareOptions, prepare, read_jsonl
from animated_stickers.data.sources import Item, fluent_items, user_items
from animated_stickers.data.stats import dataset_stats

FIXTURES = Path(__file__).parent / "fixtures" / "data"
FLUENT = ["1f634", "1f44b-1f3fe", "1f3c3-1f3fd"]  # sleeping (little motion) .. running (much motion)


def write_green_screen_mp4(path: Path, frames: int = 12, size: int = 48) -> None:
    """An H.264 video of a red disc moving over a solid green background (no alpha)."""
    yy, xx = np.mgrid[:size, :size]
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=12)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "10"}
        for t in range(frames):
            img = np.zeros((size, size, 3), np.uint8)
            img[...] = (0, 180, 0)
            img[(xx - 12 - 2 * t) ** 2 + (yy - 24) ** 2 < 8 ** 2] = (230, 20, 20)
            out.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(s.encode())


def fake_cache(root: Path) -> Path:
    """An npm cache layout holding the shipped fixtures (plus a leading-zero duplicate still)."""
    assets = root / "src" / "lobehub-fluent-emoji-anim-1-1.0.0" / "package" / "assets"
    assets.mkdir(parents=True)
    for stem in FLUENT:
        shutil.copy(FIXTURES / f"{stem}.webp", assets / f"{stem}.webp")
    return root


@pytest.fixture
def items(tmp_path):
    cache = fake_cache(tmp_path / "cache")
    videos = tmp_path / "videos"
    videos.mkdir()
    write_green_screen_mp4(videos / "red_ball.mp4")
    (videos / "red_ball.txt").write_text("a red ball rolling right")
    good = (FIXTURES / "1f634.webp").read_bytes()
    (videos / "truncated.webp").write_bytes(good[: len(good) // 2])
    (videos / "garbage.gif").write_bytes(b"GIF89a not really a gif")
    return fluent_items(cache) + user_items(videos)


def test_prepare_writes_shards_reports_bad_files_and_resumes(items, tmp_path):
    out = tmp_path / "prepared"
    opts = PrepareOptions(shard_size=2, progress=False, bucket_fps=(4.0, 8.0))
    report = prepare(items, out, opts)
    assert report.ok == 4 and report.errors == 2 and report.analysed_now == 6
    assert any("truncated.webp" in line and "truncated WebP" in line for line in report.error_lines)
    assert any("garbage.gif" in line for line in report.error_lines)

    manifest = read_jsonl(out / "manifest.jsonl")
    by_key = {r["key"]: r for r in manifest}
    run = by_key["fluent-anim_1f3c3-1f3fd"]
    assert run["caption"].startswith("person running, medium skin tone; ")
    assert run["split"] in ("train", "heldout") and run["license"].startswith("MIT")
    assert run["n_frames"] == 36 and abs(run["fps"] - 11.9) < 0.1 and run["bucket_fps"] in (4.0, 8.0)
    # more motion -> higher scores (real Fluent animations, both scores)
    sleep = by_key["fluent-anim_1f634"]
    assert sleep["scores"]["mv"] < run["scores"]["mv"] and sleep["scores"]["frame_diff"] < run["scores"]["frame_diff"]
    ball = by_key["user_red_ball"]
    assert ball["caption"] == "a red ball rolling right" and ball["key_color"] is not None
    assert not ball["has_alpha"] and ball["source"] == "user"

    # every sample is in its shard as original bytes + JSON
    for r in manifest:
        with tarfile.open(out / r["shard"]) as tf:
            data = tf.extractfile(f"{r['key']}.{r['ext']}").read()
            meta = json.loads(tf.extractfile(f"{r['key']}.json").read())
        assert len(data) == r["bytes"] and meta["caption"] == r["caption"]

    # resume: nothing re-analysed, no shard rewritten
    again = prepare(items, out, opts)
    assert again.analysed_now == 0 and again.shards_written == 0 and again.shards_kept > 0
    assert again.ok == 4


def test_killed_run_resumes_from_analysis_log(items, tmp_path):
    out = tmp_path / "prepared"
    opts = PrepareOptions(progress=False)
    prepare(items[:2], out, opts)
    with (out / "work" / "analysis.jsonl").open("a") as fh:
        fh.write('{"key": "torn')  # a run killed mid-line
    report = prepare(items, out, opts)
    assert report.analysed_now == len(items) - 2 and report.ok == 4


def test_webdataset_library_reads_the_shards(items, tmp_path):
    import webdataset as wds

    out = tmp_path / "prepared"
    prepare(items[:3], out, PrepareOptions(progress=False))
    shards = sorted(str(p) for p in out.glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False, empty_check=False))
    assert len(samples) == 3 and all("webp" in s and "json" in s for s in samples)


def test_stats_json_and_preview_cli(items, tmp_path):
    out = tmp_path / "prepared"
    prepare(items, out, PrepareOptions(progress=False, bucket_table=[(0.0, 4.0), (3.0, 8.0)]))
    runner = CliRunner()
    res = runner.invoke(app, ["stats", str(out), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    assert s["animated_clips"] == 4 and s["captions"]["coverage"] == 1.0
    assert s["frames"]["total"] == sum(r["n_frames"] for r in read_jsonl(out / "manifest.jsonl"))
    assert s["motion"]["mv"]["q0"] <= s["motion"]["mv"]["q50"] <= s["motion"]["mv"]["q100"]
    assert s["buckets"]["edges"] == [3.0] and len(s["errors"]) == 2 and s["keyed"] == 1
    assert s["buckets"]["counts_all_animated"]["4"] >= 1  # the sleeping face: little motion, low fps
    assert dataset_stats(out) == s
    words = s["motion_words"]  # clips per motion word: every clip counted once as its strongest word
    assert sum(words["strongest"].values()) == 4 and set(words["any"]) == set(words["strongest"])
    assert all(words["any"][w] >= words["strongest"][w] for w in words["any"])
    rows = read_jsonl(out / "manifest.jsonl")
    assert words["strongest"][rows[0]["motion_words"][0]] >= 1

    res = runner.invoke(app, ["preview", str(out), "--per-bucket", "2"])
    assert res.exit_code == 0, res.output
    assert sorted(p.suffix for p in (out / "preview").iterdir()) == [".png", ".png", ".webp", ".webp"]

    res = runner.invoke(app, ["stats", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no manifest.jsonl" in res.output


@pytest.mark.slow
def test_parallel_workers_give_the_same_records(items, tmp_path):
    one = prepare(items, tmp_path / "one", PrepareOptions(progress=False, workers=1))
    two = prepare(items, tmp_path / "two", PrepareOptions(progress=False, workers=2))
    assert one.ok == two.ok == 4 and one.errors == two.errors == 2

    def records(folder):
        return {r["key"]: (r["sha1"], r["scores"], r["caption"]) for r in read_jsonl(folder / "manifest.jsonl")}

    assert records(tmp_path / "one") == records(tmp_path / "two")


def test_duplicate_keys_are_refused(tmp_path):
    item = Item(key="k", source="user", license="x", path=str(FIXTURES / "1f634.webp"), name="k")
    with pytest.raises(ValueError, match="duplicate sample key 'k'"):
        prepare([item, item], tmp_path / "o", PrepareOptions(progress=False))


def test_procedural_items_are_generated_captioned_and_stored(tmp_path):
    from animated_stickers.data.sources import procedural_items

    still = Item(key="fluent-3d_1f634", source="fluent-3d", license="MIT", path=str(FIXTURES / "1f634.webp"),
                 name="1f634", kind="still")
    procs = procedural_items([still], 3, motions=["bounce", "spin", "pulse"])
    out = tmp_path / "prepared"
    report = prepare(procs, out, PrepareOptions(progress=False, procedural_size=48, with_mv=False,
                                                bucket_score="frame_diff"))
    assert report.ok == 3
    rows = {r["procedural_motion"]: r for r in read_jsonl(out / "manifest.jsonl")}
    # Exact captions from the transform that made the clip (words and adverbs), after the emoji's name.
    assert rows["bounce"]["caption"].startswith("sleeping face, ") and "bouncing" in rows["bounce"]["caption"]
    assert "spinning" in rows["spin"]["caption"] and "spin" in rows["spin"]["keywords"]
    assert rows["spin"]["subject"] == "sleeping face"
    assert rows["spin"]["n_frames"] == 24 and abs(rows["spin"]["fps"] - 24.0) < 0.3 and rows["spin"]["width"] == 48
    # Procedural clips are exact loops: the period is found, and the measured motion names the transform.
    assert rows["spin"]["loop_period"] in (12, 24) and rows["bounce"]["loop_period"] in (12, 24)
    assert "spinning" in rows["spin"]["motion_words"]
    from animated_stickers.data.loader import LoaderConfig, StickerClips

    examples = list(StickerClips(LoaderConfig(data=str(out), resolution=24, split=None, epochs=1, fps=12.0)))
    assert len(examples) == 3 and all(e["video"].shape == (4, 8, 24, 24) for e in examples)
    assert rows["spin"]["license"].endswith("MIT") and rows["spin"]["scores"]["frame_diff"] > 1.0
    assert rows["spin"]["split"] == rows["bounce"]["split"]  # split follows the still's emoji


def test_prepare_cli_with_user_videos(tmp_path):
    cache = fake_cache(tmp_path / "cache")
    videos = tmp_path / "videos"
    videos.mkdir()
    write_green_screen_mp4(videos / "ball.mp4")
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    common = ["--cache", str(cache), "--no-mv", "--bucket-score", "frame_diff", "--bucket-fps", "4,8"]
    res = CliRunner().invoke(app, ["prepare", str(tmp_path / "out"), "--videos", str(videos), *common])
    assert res.exit_code == 0, res.output  # --videos alone: only the videos
    assert "1 samples" in res.output and "1 bad files" in res.output and "broken.mp4" in res.output
    res = CliRunner().invoke(app, ["prepare", str(tmp_path / "out"), "--videos", str(videos),
                                   "--source", "fluent-anim", *common])
    assert res.exit_code == 0, res.output
    assert "4 samples" in res.output
    res = CliRunner().invoke(app, ["prepare", str(tmp_path / "out2"), "--cache", str(cache), "--bucket-fps", "8,4"])
    assert res.exit_code == 2 and "ascending" in res.output
