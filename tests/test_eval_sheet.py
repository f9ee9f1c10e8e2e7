"""`stickers eval sheet`: one sticker under several prompts, labelled with the motion measured in each row."""

from __future__ import annotations

from PIL import Image
from typer.testing import CliRunner

from animated_stickers.cli import app
from animated_stickers.models.checkpoint import save_model
from sampling_support import one_thread, sticker, tiny_model  # noqa: F401 (one_thread: autouse fixture)
from test_prompt_motion import face_canvas


def test_sheet_writes_one_labelled_row_per_prompt(tmp_path):
    save_model(tiny_model(), tmp_path / "model")
    Image.fromarray(face_canvas(96)).save(tmp_path / "s.png")  # asymmetric: a spin is visible
    r = CliRunner().invoke(app, ["eval", "sheet", str(tmp_path / "s.png"), "--prompt", "a face spinning around",
                                 "--prompt", "a face sliding left and right", "--out",
                                 str(tmp_path / "o" / "sheet.png"), "--model", str(tmp_path / "model"),
                                 "--tile", "48"])
    assert r.exit_code == 0, r.output
    rows = [line.split(None, 1) for line in r.stdout.splitlines()[:2]]
    assert rows == [["spinning", "a face spinning around"], ["sliding", "a face sliding left and right"]]
    sheet = Image.open(tmp_path / "o" / "sheet.png")
    assert sheet.size[0] == 8 * 48 and sheet.size[1] > 2 * 48  # 8 frames per row, two rows with labels
    with Image.open(tmp_path / "o" / "sheet.webp") as grid:
        assert grid.n_frames == 8


def test_sheet_refuses_an_output_that_is_not_png(tmp_path):
    sticker(64, 64).save(tmp_path / "s.png")
    r = CliRunner().invoke(app, ["eval", "sheet", str(tmp_path / "s.png"), "--prompt", "x", "--out",
                                 str(tmp_path / "sheet.jpg")])
    assert r.exit_code != 0 and r.stderr.strip().splitlines() == [f"error: --out '{tmp_path / 'sheet.jpg'}': "
                                                                   "expected a .png file"]
    assert not (tmp_path / "sheet.jpg").exists()


def test_sheet_on_the_motion_path_shows_every_4th_frame_and_animates_them_all(tmp_path):
    import torch

    from animated_stickers.models.motion_net import MotionNet, motion_config, save_motion_model
    from test_motion_pipeline import TINY_MOTION

    torch.manual_seed(0)
    folder = save_motion_model(MotionNet(motion_config(TINY_MOTION)), tmp_path / "motion")
    Image.fromarray(face_canvas(96)).save(tmp_path / "s.png")
    r = CliRunner().invoke(app, ["eval", "sheet", str(tmp_path / "s.png"), "--prompt", "a face waving", "--out",
                                 str(tmp_path / "sheet.png"), "--motion-model", str(folder), "--tile", "32"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "sheet.png").size[0] == 12 * 32  # 48 frames: every 4th
    with Image.open(tmp_path / "sheet.webp") as grid:
        assert grid.n_frames == 48


def test_sheet_puts_the_artists_clip_first_from_its_frame_0(tmp_path):
    """--artist: the clip's frame 0 is the still, and the clip itself (a disc sliding, 12 fps) is the first row,
    played at the model rows' 24 fps and measured like them."""
    import numpy as np
    import torch

    from animated_stickers.models.motion_net import MotionNet, motion_config, save_motion_model
    from test_motion_pipeline import TINY_MOTION

    torch.manual_seed(0)
    folder = save_motion_model(MotionNet(motion_config(TINY_MOTION)), tmp_path / "motion")
    face = face_canvas(96)
    frames = [Image.fromarray(np.roll(face, round(14 * np.sin(2 * np.pi * t / 12)), axis=1)) for t in range(12)]
    frames[0].save(tmp_path / "clip.webp", save_all=True, append_images=frames[1:], duration=83, loop=0,
                   lossless=True)
    r = CliRunner().invoke(app, ["eval", "sheet", "--artist", str(tmp_path / "clip.webp"), "--prompt", "a face",
                                 "--out", str(tmp_path / "sheet.png"), "--motion-model", str(folder), "--tile", "32"])
    assert r.exit_code == 0, r.output
    rows = [line.split(None, 1) for line in r.stdout.splitlines()[:2]]
    assert rows[0] == ["sliding", "artist's clip (clip)"] and rows[1][1] == "a face"
    with Image.open(tmp_path / "sheet.webp") as grid:
        assert grid.n_frames == 48  # the artist's 1 s loop wraps round to the model's 2 s
        grid.seek(0)
        first = np.asarray(grid.convert("RGB"))
        grid.seek(6)  # 0.25 s: a quarter of the artist's loop, its widest swing
        later = np.asarray(grid.convert("RGB"))
    assert np.abs(first[:32, :32].astype(int) - later[:32, :32]).mean() > 3  # the artist's tile moves


def test_sheet_wants_an_image_or_an_artists_clip(tmp_path):
    sticker(64, 64).save(tmp_path / "s.png")
    for args in ([], [str(tmp_path / "s.png"), "--artist", str(tmp_path / "s.png")]):
        r = CliRunner().invoke(app, ["eval", "sheet", *args, "--prompt", "x", "--out", str(tmp_path / "sheet.png")])
        assert r.exit_code != 0 and r.stderr.strip().splitlines() == [
            "error: eval sheet: expected a sticker image or --artist CLIP (one of them)"]
    assert not (tmp_path / "sheet.png").exists()
