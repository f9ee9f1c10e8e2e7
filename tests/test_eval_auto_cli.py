"""`stickers eval auto` / `calibrate` on tiny real folders written with Pillow."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from animated_stickers.cli import app

T, S, COND = 8, 128, 3


def disc(cy: float, cx: float, size: int = S) -> np.ndarray:
    """A shaded, striped soft disc as straight RGBA uint8 (H, W, 4)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / 24.0
    a = np.clip((1 - d) * 16, 0, 1)
    shade = np.clip(1 - (yy - cy + 24) / 96, 0, 1)
    rgb = np.stack([shade * 0.9, shade * 0.6, np.full_like(shade, 0.2)], -1)
    rgb[np.abs(xx - cx) < 3] = 0.1
    return (np.concatenate([rgb, a[..., None]], -1) * 255).round().astype(np.uint8)


def loop_frames(n: int = T, radius: float = 8.0) -> list[Image.Image]:
    ang = 2 * np.pi * np.arange(n) / n
    return [Image.fromarray(disc(64 + radius * np.sin(a), 64 + radius * np.cos(a))) for a in ang]


def save_webp(frames: list[Image.Image], path, fps: float = 8) -> None:
    frames[0].save(
        path,
        format="WEBP",
        save_all=True,
        append_images=frames[1:],
        duration=round(1000 / fps),
        loop=0,
        lossless=True,
        exact=True,
    )


@pytest.fixture()
def folders(tmp_path):
    """4 inputs: a good loop (WebP), a still (APNG, one repeated frame), a missing output, a corrupt file."""
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    frames = loop_frames()
    for stem in ("good", "still", "missing", "corrupt"):
        frames[COND].save(inputs / f"{stem}.png")
    (inputs / "prompts.json").write_text(
        json.dumps(
            [{"image": f"{s}.png", "prompt": f"a disc {s}"} for s in ("good", "still", "missing", "corrupt")]
        )
    )
    save_webp(frames, outputs / "good.webp")
    frames[COND].save(
        outputs / "still.png",
        format="PNG",
        save_all=True,
        append_images=[frames[COND]] * (T - 1),
        duration=125,
        loop=0,
    )
    (outputs / "corrupt.gif").write_bytes(b"GIF89a not really")
    return inputs, outputs


def run(*args):
    return CliRunner().invoke(app, ["eval", *map(str, args)])


def test_auto_json_summary_counts_missing_and_unreadable_as_failures(folders, tmp_path):
    inputs, outputs = folders
    report = tmp_path / "report"
    res = run("auto", "--inputs", inputs, "--outputs", outputs, "--report", report, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["n"] == 4 and summary["n_failed_to_read"] == 2
    ex = summary["criteria"]["existence"]
    assert (ex["passed"], ex["n"], ex["pass_rate"]) == (1, 4, 0.25)  # only the good loop moves
    assert summary["criteria"]["identity"]["passed"] == 2  # good + still reproduce the input
    # Pillow stores the repeated still as one frame: too short to loop, like missing/corrupt outputs.
    assert summary["criteria"]["looping"]["passed"] == 1
    records = [json.loads(line) for line in (report / "per_sticker.jsonl").read_text().splitlines()]
    by = {r["stem"]: r for r in records}
    assert by["missing"]["error"] == "missing output" and not any(
        c["pass"] for c in by["missing"]["criteria"].values()
    )
    assert by["corrupt"]["error"].startswith("unreadable output")
    assert by["good"]["passed_all"], {
        k: v["value"] for k, v in by["good"]["criteria"].items() if not v["pass"]
    }
    assert json.loads((report / "summary.json").read_text()) == summary
    assert "| existence | 1/4 | 0.250 |" in (report / "summary.md").read_text()


def test_auto_compares_with_real_clips(folders, tmp_path):
    inputs, outputs = folders
    real = tmp_path / "real"
    real.mkdir()
    save_webp(loop_frames(), real / "good.webp")
    save_webp(loop_frames(radius=4.0), real / "still.webp")
    save_webp(loop_frames(), real / "missing.webp")
    res = run(
        "auto", "--inputs", inputs, "--outputs", outputs, "--real", real, "--report", tmp_path / "r", "--json"
    )
    assert res.exit_code == 0, res.output
    vs = json.loads(res.stdout)["vs_real"]
    assert vs["n"] == 2  # the outputs that could be read
    rows = {r["stem"]: r for r in vs["per_sticker"]}
    assert rows["good"]["all_frames_psnr"] == 100.0 and rows["still"]["motion_generated"] == 0.0
    # The motion criteria against the artist's clip, with their calibrated bands, per sticker (issue 26):
    by = {json.loads(line)["stem"]: json.loads(line) for line in (tmp_path / "r" / "per_sticker.jsonl").open()}
    good, still = by["good"]["criteria"], by["still"]["criteria"]
    for name in ("motion_size", "motion_where", "motion_parts"):
        assert good[name]["pass"], (name, good[name])  # the artist's own motion passes
        assert len(good[name]["threshold"]) == 2  # [low, high]
    assert good["motion_size"]["value"] == pytest.approx(1.0, abs=0.05)
    assert not still["motion_size"]["pass"] and still["motion_size"]["value"] < 0.05  # frozen: caught
    assert not by["missing"]["criteria"]["motion_size"]["pass"]  # a missing output fails them too
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["motion_vs_real"]["all_motion"]["n"] == 3  # good, still, missing (corrupt has no real clip)
    assert by["good"]["motion_alone"]["hardly_moves"] is False and by["still"]["motion_alone"]["hardly_moves"]


def test_auto_markdown_default_report_folder(folders):
    inputs, outputs = folders
    res = run("auto", "--inputs", inputs, "--outputs", outputs)
    assert res.exit_code == 0, res.output
    assert "| existence |" in res.stdout
    assert (outputs / "eval" / "per_sticker.jsonl").is_file()


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "prompts.json' does not exist"),
        ("[{]", "not valid JSON"),
        ('[{"image": "nope.png", "prompt": "x"}]', "entry 0: image 'nope.png' is not in"),
        ('[{"image": "a.png"}]', "prompts.json' entry 0: expected {\"image\""),
    ],
)
def test_bad_prompts_json_is_one_line_error(tmp_path, content, expected):
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGBA", (8, 8)).save(inputs / "a.png")
    if content is not None:
        (inputs / "prompts.json").write_text(content)
    res = run("auto", "--inputs", inputs, "--outputs", tmp_path)
    assert res.exit_code == 2
    assert expected in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_auto_needs_inputs_and_outputs_or_model(tmp_path):
    res = run("auto", "--inputs", tmp_path)
    assert res.exit_code == 2 and "--outputs" in res.stderr


def test_calibrate_on_tiny_synthetic_assets(tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    for i, name in enumerate(("1f600", "1f601", "1f602")):
        save_webp(loop_frames(24, radius=6.0 + 3 * i), assets / f"{name}.webp", fps=24)
    Image.fromarray(disc(64, 64)).save(assets / "1f603.webp")  # a still: skipped
    out = tmp_path / "cal"
    res = run("calibrate", "--assets", str(assets / "*.webp"), "--split", "all", "--out", out)
    assert res.exit_code == 0, res.output
    report = json.loads((out / "calibration.json").read_text())
    assert report["meta"]["n_clips"] == 3
    assert report["pass_rates"]["existence"]["static"] == 0.0
    assert report["pass_rates"]["existence"]["real"] == 1.0
    th = json.loads((out / "thresholds.json").read_text())
    assert set(th["criteria"]) >= {"existence", "looping", "identity"}
    assert "| existence |" in (out / "calibration.md").read_text()


@pytest.mark.slow
def test_auto_model_generates_then_judges(tmp_path):
    """`--model`: a real (tiny, random) model animates the middle frames of real clips, then is judged."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("animated_stickers.sampling.pipeline")
    from animated_stickers.models.checkpoint import save_model
    from sampling_support import tiny_model

    torch.set_num_threads(1)
    model = tiny_model()
    model.sampling.steps, model.sampling.guided_steps = 2, 1
    save_model(model, tmp_path / "model")
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("1f600", "1f34e"):
        save_webp(loop_frames(24), assets / f"{name}.webp", fps=24)
    report = tmp_path / "report"
    res = run(
        "auto",
        "--model",
        tmp_path / "model",
        "--split",
        "all",
        "--assets",
        str(assets / "*.webp"),
        "--limit",
        2,
        "--report",
        report,
        "--json",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["n"] == 2 and summary["n_failed_to_read"] == 0
    assert summary["vs_real"]["n"] == 2
    prompts = json.loads((report / "inputs" / "prompts.json").read_text())
    assert {p["prompt"].split(";")[0] for p in prompts} == {"grinning face", "red apple"}
    assert sorted(p.name for p in (report / "outputs").glob("[!.]*")) == ["1f34e.webp", "1f600.webp"]
    from animated_stickers.sampling.resume import recorded_loop

    assert recorded_loop(report / "outputs" / "1f600.webp") == {"path": "video", "frames": 8, "fps": 8.0,
                                                                "cond_index": 3}  # beside it, hidden


@pytest.mark.slow
def test_auto_motion_model_generates_on_the_motion_path_then_judges(tmp_path):
    """`--motion-model`: the motion path animates the clips (48 frames at 24 fps, the still frame 0), each
    output records its loop, and the judge reads the conditioning frame from that record."""
    torch = pytest.importorskip("torch")
    from animated_stickers.models.motion_net import MotionNet, motion_config, save_motion_model
    from animated_stickers.sampling.resume import recorded_loop
    from test_motion_pipeline import TINY_MOTION

    torch.set_num_threads(1)
    torch.manual_seed(0)
    folder = save_motion_model(MotionNet(motion_config(TINY_MOTION)), tmp_path / "motion")
    assets = tmp_path / "assets"
    assets.mkdir()
    save_webp(loop_frames(24), assets / "1f600.webp", fps=24)
    report = tmp_path / "report"
    res = run("auto", "--motion-model", folder, "--split", "all", "--assets", str(assets / "*.webp"), "--limit", 1,
              "--report", report, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n"] == 1
    out = report / "outputs" / "1f600.webp"
    assert recorded_loop(out) == {"path": "motion", "frames": 48, "fps": 24.0, "cond_index": 0}
    record = json.loads((report / "per_sticker.jsonl").read_text().splitlines()[0])
    assert record["cond_index"] == {"index": 0, "from": "recorded"}
