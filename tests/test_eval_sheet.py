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
