"""The training loader: clips from shards, RGBA kept, middle-frame conditioning, CFG dropout, seeds, ranks."""

import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from animated_stickers.data.animation import read_animation
from animated_stickers.data.loader import (
    LoaderConfig,
    StickerClips,
    draw_dropout,
    make_dataloader,
)
from animated_stickers.data.shards import PrepareOptions, prepare
from animated_stickers.data.sources import Item

FIXTURES = Path(__file__).parent / "fixtures" / "data"
STEMS = ["1f634", "1f44b-1f3fe", "1f3c3-1f3fd"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """12 samples (the 3 real Fluent fixtures under 4 names each) in 6 shards, all in the train split."""
    root = tmp_path_factory.mktemp("loader")
    items = []
    for i in range(4):
        for stem in STEMS:
            path = root / "src" / f"{stem}-copy{i}.webp"
            path.parent.mkdir(exist_ok=True)
            shutil.copy(FIXTURES / f"{stem}.webp", path)
            items.append(Item(key=f"s{i}_{stem}", source="fluent-anim", license="MIT", path=str(path),
                              name=f"sample {i} {stem}", caption=f"caption {i} {stem}"))
    out = root / "prepared"
    prepare(items, out, PrepareOptions(shard_size=2, progress=False, with_mv=False, bucket_score="frame_diff",
                                       bucket_table=[(0.0, 4.0), (20.0, 8.0)]))
    from animated_stickers.data.shards import read_jsonl
    assert {r["split"] for r in read_jsonl(out / "manifest.jsonl")} <= {"train", "heldout"}
    return out


def cfg(dataset, **kw):
    base = {"data": str(dataset), "resolution": 32, "epochs": 1, "split": None, "shuffle_buffer": 4, "seed": 0}
    return LoaderConfig(**{**base, **kw})


def summary(examples):
    return [(e["key"], e["cond_index"], e["drop_text"], e["drop_image"], round(float(e["video"].sum()), 3))
            for e in examples]


def test_example_shapes_rgba_and_middle_frame(dataset):
    ex = list(StickerClips(cfg(dataset)))
    assert len(ex) == 12
    e = ex[0]
    assert e["video"].shape == (4, 8, 32, 32) and e["video"].dtype == torch.float32
    assert e["cond_index"] == 3 and torch.equal(e["cond_image"], e["video"][:, 3])
    alpha = e["video"][3]
    assert alpha.min() == 0.0 and alpha.max() == 1.0  # transparent corners and an opaque sticker
    assert 0 <= float(e["video"].min()) and float(e["video"].max()) <= 1


def test_clip_frames_match_the_source_frames(dataset):
    """At 4 fps a 11.9 fps source is sampled every 3rd frame (spacing rule) starting where the plan says."""
    e = next(iter(StickerClips(cfg(dataset, fps=4.0, loop_clips=False, resolution=64))))
    stem = e["key"].split("_", 1)[1]
    src = read_animation(FIXTURES / f"{stem}.webp").frames
    ours = (e["video"].permute(1, 2, 3, 0).numpy() * 255).round().astype(np.uint8)  # (T, H, W, 4)
    starts = [s for s in range(len(src) - 21) if np.array_equal(src[s], ours[0])]
    assert starts, "the first clip frame is a source frame"
    s = starts[0]
    assert all(np.array_equal(src[s + 3 * i], ours[i]) for i in range(8))


def test_same_seed_same_data_other_seed_other_data(dataset):
    a = summary(StickerClips(cfg(dataset, cond_mode="random", p_drop_text=0.3)))
    b = summary(StickerClips(cfg(dataset, cond_mode="random", p_drop_text=0.3)))
    c = summary(StickerClips(cfg(dataset, cond_mode="random", p_drop_text=0.3, seed=1)))
    assert a == b and a != c
    assert sorted(x[0] for x in a) == sorted(x[0] for x in c)  # same samples, other order/choices


def test_ranks_partition_the_data(dataset):
    keys = []
    for rank in range(3):
        keys.append([e["key"] for e in StickerClips(cfg(dataset), rank=rank, world_size=3)])
    flat = [k for ks in keys for k in ks]
    assert len(flat) == len(set(flat)) == 12 and all(keys)
    # more readers than shards (6): sample-level split, still a partition
    many = [e["key"] for r in range(8) for e in StickerClips(cfg(dataset), rank=r, world_size=8)]
    assert sorted(many) == sorted(flat)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_dataloader_workers_batch_and_cover_the_data(dataset):
    dl = make_dataloader(cfg(dataset), batch_size=4, num_workers=2)
    batches = list(dl)
    keys = [k for b in batches for k in b["key"]]
    assert sorted(keys) == sorted(e["key"] for e in StickerClips(cfg(dataset)))
    assert batches[0]["video"].shape == (4, 4, 8, 32, 32)  # (B, C, T, H, W)
    assert batches[0]["cond_image"].shape == (4, 4, 32, 32)


def test_dynamic_fps_follows_the_motion_bucket(dataset):
    ex = list(StickerClips(cfg(dataset, fps="dynamic", loop_clips=False)))
    by_stem = {e["key"].split("_", 1)[1]: e["fps"] for e in ex}
    # the sleeping face (little motion) is sampled slower than the running person
    assert by_stem["1f634"] < by_stem["1f3c3-1f3fd"]


def test_cfg_dropout_rates():
    rng = random.Random(0)
    n = 20000
    draws = [draw_dropout(rng, 0.07, 0.05, 0.1) for _ in range(n)]
    text_only = sum(t and not i for t, i in draws) / n
    image_only = sum(i and not t for t, i in draws) / n
    both = sum(t and i for t, i in draws) / n
    assert abs(text_only - 0.07) < 0.01 and abs(image_only - 0.05) < 0.01 and abs(both - 0.1) < 0.01
    with pytest.raises(ValueError, match="sum to <= 1"):
        LoaderConfig(data=".", p_drop_text=0.6, p_drop_image=0.6)


def test_dropped_text_gives_empty_prompt(dataset):
    ex = list(StickerClips(cfg(dataset, p_drop_text=0.0, p_drop_image=0.0, p_drop_both=1.0,
                               caption_mix=(1.0, 0.0, 0.0))))
    assert all(e["prompt"] == "" and e["drop_text"] and e["drop_image"] for e in ex)
    assert all(e["caption"].startswith("caption ") for e in ex)


def test_loops_give_whole_loop_clips_with_a_random_phase_and_templated_captions(dataset):
    ex = list(StickerClips(cfg(dataset, cond_mode="random", epochs=3)))
    assert all(e["loops"] for e in ex)  # the Fluent fixtures loop seamlessly
    assert len({e["cond_index"] for e in ex}) > 4  # any conditioning index
    captions = {e["caption"] for e in ex}
    # Templates: subject + measured motion, motion only, subject only.
    assert any(c.startswith("caption ") and ", " in c for c in captions)
    assert any(not c.startswith("caption ") for c in captions)


def test_frames_are_fitted_on_a_transparent_square_like_a_users_sticker(dataset):
    """Training sees what sampling sees: the whole sticker fitted and padded, never cropped."""
    from animated_stickers.data.loader import decode_grid

    frames = np.zeros((2, 20, 40, 4), np.uint8)
    frames[:, :, :] = (255, 0, 0, 255)  # an opaque 2:1 red bar
    from animated_stickers.rgba import fit_pad_frames

    out = fit_pad_frames(frames, 10)
    assert out.shape == (2, 10, 10, 4)
    assert out[0, 5, 0, 3] == 255 and out[0, 5, 9, 3] == 255  # both ends kept
    assert out[0, 0, 5, 3] == 0 and out[0, 9, 5, 3] == 0  # padded above and below
    import json

    meta = json.loads(next((dataset).glob("manifest.jsonl")).read_text().splitlines()[0])
    data = Path(meta["path"]).read_bytes()
    assert meta["fps"] < 12.5
    assert len(decode_grid(meta, data, 32, 12.0)) == meta["n_frames"]  # ~12 fps: every step kept
    grid = decode_grid(meta, data, 32, 6.0)
    assert grid.shape[1:] == (32, 32, 4) and len(grid) == -(-meta["n_frames"] // 2)  # thinned to ~6 fps


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .tar shards"):
        StickerClips(LoaderConfig(data=str(tmp_path)))
