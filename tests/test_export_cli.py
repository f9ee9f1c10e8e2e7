"""`stickers export`: files the project wrote and foreign RGBA animations in, verified files out, one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from animated_stickers.cli import app
from animated_stickers.export.formats import read_frames, write_animation
from export_fixtures import moving_disc

runner = CliRunner()


@pytest.fixture(scope="module")
def project_webp(tmp_path_factory):
    """What `stickers animate` writes: 8 frames, lossless WebP, 8 fps."""
    return write_animation(moving_disc(96, 8, soft=3.0), tmp_path_factory.mktemp("in") / "cat.webp", fps=8.0)


def test_export_gif_from_project_webp(project_webp):
    result = runner.invoke(app, ["export", str(project_webp), "--preset", "slack-emoji"])
    assert result.exit_code == 0, result.output
    out = project_webp.with_name("cat.slack-emoji.gif")  # default name: beside the input
    frames, fps = read_frames(out)
    assert frames[0].size == (128, 128) and len(frames) > 8 and fps > 8.0  # retimed by blending
    assert str(out) in result.output and "of 128 KB" in result.output


def test_export_foreign_animation_with_frames_fps_and_json(tmp_path):
    # A foreign RGBA animation: APNG, 24 frames at 24 fps, not square.
    src = write_animation([f.crop((0, 16, 96, 80)) for f in moving_disc(96, 24)], tmp_path / "x.png", fps=24.0)
    out = tmp_path / "y.webp"
    result = runner.invoke(app, ["export", str(src), "-p", "whatsapp-static", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["path"] == str(out) and report["size"] == [512, 512] and report["frames"] == 1
    assert out.stat().st_size == report["bytes"] <= 100 * 1024
    result = runner.invoke(app, ["export", str(src), "-p", "slack-emoji", "-o", str(tmp_path / "e.gif"),
                                 "--frames", "8", "--fps", "12", "--retime", "hold"])
    assert result.exit_code == 0, result.output
    frames, fps = read_frames(tmp_path / "e.gif")
    # Played at 12 fps the 24 frames last 2 s; 8 of them keep that length (4 fps); "hold" adds no blends.
    assert len(frames) == 8 and fps == pytest.approx(4.0)


@pytest.mark.parametrize("args, message", [
    (["missing.webp"], "file not found"),
    (["{src}", "--preset", "myspace"], "expected one of"),
    (["{src}", "--preset", "telegram", "--fps", "1"], "at most 3 s"),
    (["{src}", "--frames", "0"], "at least 1"),
    (["{src}", "--retime", "wobble"], "retime mode"),
    (["{src}", "--out", "{src}/x.webm"], "is not a folder"),  # a file where the output folder would go
])
def test_errors_are_one_line_with_exit_code_2(project_webp, args, message):
    result = runner.invoke(app, ["export"] + [a.format(src=project_webp) for a in args])
    assert result.exit_code == 2
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
