"""The HTTP API on a real uvicorn server on loopback, serving a tiny random model through AnimatePipeline."""

from __future__ import annotations

import asyncio
import io
import time
import uuid

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from animated_stickers.config import model_config
from animated_stickers.models.checkpoint import StickerModel
from animated_stickers.sampling.pipeline import AnimatePipeline, TextToImagePipeline
from animated_stickers.serve.app import create_app
from animated_stickers.serve.server import ServerThread
from animated_stickers.serve.settings import ServeSettings
from sampling_support import TINY  # noqa: E402  (64 px canvas, a ~0.5M-parameter UNet: fast on one core)

FAST = {"steps": "2", "seed": "0"}


@pytest.fixture(scope="module")
def pipeline():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield AnimatePipeline(StickerModel.create(model_config("tiny", overrides=TINY)).eval())
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def server(pipeline):
    settings = ServeSettings(max_batch=4, max_wait_ms=20, queue_size=8, max_upload_bytes=256 * 1024)
    with ServerThread(create_app(pipeline, settings)) as srv:
        yield srv


def sticker_png(w: int = 96, h: int = 64) -> bytes:
    """A non-square RGBA sticker: an opaque ellipse on a transparent canvas."""
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - w / 2) / (0.4 * w)) ** 2 + ((yy - h / 2) / (0.4 * h)) ** 2 <= 1
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = 230, (yy * 255 // h), 40
    rgba[..., 3] = np.where(inside, 255, 0)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def post_animate(client, png: bytes, **fields):
    data = {"prompt": "waving hello", **FAST, **{k: str(v) for k, v in fields.items()}}
    return client.post("/v1/animate", data=data, files={"image": ("sticker.png", png, "image/png")})


def frames_of(data: bytes) -> list[np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGBA")))
        return out


def test_animate_returns_an_8_frame_webp_with_alpha_at_the_input_size(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = post_animate(client, sticker_png(96, 64), request_id="req-1")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.format == "WEBP" and im.n_frames == 8 and im.size == (96, 64)
            assert im.mode == "RGBA"
        frames = frames_of(r.content)
        assert len(frames) == 8
        assert min(int(f[..., 3].min()) for f in frames) < 255  # alpha survives: not an opaque video

        # The same frames in other formats, without sampling again.
        batches = client.get("/v1/stats").json()["batches"]
        gif = client.get(f"/v1/results/{r.headers['x-result-id']}", params={"format": "gif"})
        assert gif.status_code == 200 and gif.headers["content-type"] == "image/gif"
        assert len(frames_of(gif.content)) == 8
        webm = client.get(f"/v1/results/{r.headers['x-result-id']}", params={"format": "webm"})
        assert webm.status_code == 200 and webm.headers["content-type"] == "video/webm"
        assert webm.content[:4] == b"\x1a\x45\xdf\xa3"  # EBML header
        assert client.get("/v1/stats").json()["batches"] == batches

        # Progress of the tagged request reached the last step.
        p = client.get("/v1/progress/req-1").json()
        assert p["state"] == "done" and p["total"] > 0 and p["step"] == p["total"]


def test_room_false_keeps_the_sticker_at_its_size_under_a_motion_prompt(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        alpha = {}
        for room in ("true", "false"):
            r = post_animate(client, sticker_png(96, 64), prompt="sliding left and right", room=room)
            assert r.status_code == 200, r.text
            alpha[room] = frames_of(r.content)[3][..., 3].astype(float).sum()  # the sticker's own frame
    assert alpha["true"] < 0.95 * alpha["false"]  # drawn smaller to make room for the slide


def test_messenger_preset_reply_meets_its_canvas(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        r = post_animate(client, sticker_png(96, 64), preset="slack-emoji", format="webp")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/gif" and len(r.content) <= 128 * 1024  # preset wins
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.format == "GIF" and im.size == (128, 128) and im.n_frames >= 8


def _encoded(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _bmp() -> bytes:
    return _encoded(Image.new("RGB", (32, 32), (255, 0, 0)), "BMP")


def _photo_jpeg() -> bytes:
    """Opaque noise: no alpha and no plain background to key out."""
    rng = np.random.default_rng(0)
    return _encoded(Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), "RGB"), "JPEG")


PNG = sticker_png()
BAD_INPUTS = {
    # name: (form fields, (filename, bytes, content type) or None, expected status)
    "not an image": ({}, ("s.png", b"this is not a picture", "image/png"), 400),
    "truncated png": ({}, ("s.png", PNG[: len(PNG) // 2], "image/png"), 400),
    "empty file": ({}, ("s.png", b"", "image/png"), 400),
    "declared text": ({}, ("s.txt", b"hello", "text/plain"), 415),
    "bmp bytes": ({}, ("s.bmp", _bmp(), "application/octet-stream"), 415),
    "photo, nothing to key": ({}, ("p.jpg", _photo_jpeg(), "image/jpeg"), 422),
    "too small": ({}, ("s.png", _encoded(Image.new("RGBA", (10, 10)), "PNG"), "image/png"), 422),
    "body too big": ({}, ("s.png", PNG + b"\0" * (600 * 1024), "image/png"), 413),
    "file too big": ({}, ("s.png", PNG + b"\0" * (280 * 1024), "image/png"), 413),
    "empty prompt": ({"prompt": ""}, ("s.png", PNG, "image/png"), 422),
    "blank prompt": ({"prompt": "   "}, ("s.png", PNG, "image/png"), 422),
    "huge prompt": ({"prompt": "wave " * 2000}, ("s.png", PNG, "image/png"), 422),
    "long prompt": ({"prompt": "w" * 301}, ("s.png", PNG, "image/png"), 422),
    "zero steps": ({"steps": "0"}, ("s.png", PNG, "image/png"), 422),
    "steps not a number": ({"steps": "many"}, ("s.png", PNG, "image/png"), 422),
    "unknown format": ({"format": "bmp"}, ("s.png", PNG, "image/png"), 422),
    "unknown preset": ({"preset": "myspace"}, ("s.png", PNG, "image/png"), 422),
    "unknown render": ({"render": "paint"}, ("s.png", PNG, "image/png"), 422),
    "room not a yes/no": ({"room": "maybe"}, ("s.png", PNG, "image/png"), 422),
    "no image": ({}, None, 422),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_a_one_line_json_4xx_and_never_reaches_the_model(server, name):
    fields, upload, status = BAD_INPUTS[name]
    data = {"prompt": "waving", **fields}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        before = client.get("/v1/stats").json()
        r = client.post("/v1/animate", data=data, files={"image": upload} if upload else None)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/json")
        err = r.json()["error"]
        assert isinstance(err, str) and err and "\n" not in err
        after = client.get("/v1/stats").json()
        assert after["batches"] == before["batches"]
        assert client.get("/healthz").json()["status"] == "ok"


def test_malformed_multipart_is_400_json(server):
    r = httpx.post(server.url + "/v1/animate", content=b"--nope\r\n\r\n",
                   headers={"content-type": "multipart/form-data; boundary=zzz"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]


def _wait_running(client, request_id: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = client.get(f"/v1/progress/{request_id}")
        if r.status_code == 200 and r.json()["state"] == "running":
            return
        time.sleep(0.01)
    raise AssertionError(f"request {request_id} never started running")


def test_full_queue_answers_503_with_retry_after(pipeline):
    # One running batch (slow: many steps) + one waiting request fill a queue of size 1.
    settings = ServeSettings(max_batch=1, max_wait_ms=0, queue_size=1, max_steps=1000)
    with ServerThread(create_app(pipeline, settings)) as srv:

        async def scenario():
            async with httpx.AsyncClient(base_url=srv.url, timeout=120) as client:
                slow = asyncio.create_task(client.post(
                    "/v1/animate", data={"prompt": "spin", "steps": "40", "request_id": "slow"},
                    files={"image": ("s.png", PNG, "image/png")}))
                await asyncio.to_thread(_wait_running, httpx.Client(base_url=srv.url), "slow")
                queued = asyncio.create_task(client.post(
                    "/v1/animate", data={"prompt": "spin", "steps": "1", "request_id": "queued"},
                    files={"image": ("s.png", PNG, "image/png")}))
                while (await client.get("/v1/stats")).json()["waiting"] < 1:
                    await asyncio.sleep(0.01)
                refused = await client.post("/v1/animate", data={"prompt": "spin", "steps": "1"},
                                            files={"image": ("s.png", PNG, "image/png")})
                return refused, await slow, await queued, (await client.get("/v1/stats")).json()

        refused, slow, queued, stats = asyncio.run(scenario())
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert "queue" in refused.json()["error"]
    assert slow.status_code == 200 and queued.status_code == 200  # the admitted ones still finish
    assert stats["rejected"] == 1 and stats["batch_sizes"] == {"1": 2}


def test_request_timeout_is_504_json_and_stops_the_abandoned_batch(pipeline):
    settings = ServeSettings(max_batch=1, max_wait_ms=0, queue_size=2, request_timeout_s=0.5, max_steps=1000)
    with ServerThread(create_app(pipeline, settings)) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as client:
        t0 = time.monotonic()
        r = post_animate(client, PNG, steps=1000)
        assert r.status_code == 504 and "timed out" in r.json()["error"]
        deadline = time.monotonic() + 30
        while client.get("/v1/stats").json()["running"] and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = client.get("/v1/stats").json()
        assert stats["timed_out"] == 1 and stats["aborted_batches"] == 1 and stats["running"] == 0
        assert time.monotonic() - t0 < 30  # far less than 1000 steps would take
        assert stats["waiting"] == 0  # the worker is free again


def test_concurrent_requests_are_merged_into_one_batch(pipeline):
    settings = ServeSettings(max_batch=4, max_wait_ms=1500, queue_size=8)
    with ServerThread(create_app(pipeline, settings)) as srv:

        async def burst(fields: list[dict]) -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=120) as client:
                return await asyncio.gather(*(client.post(
                    "/v1/animate", data={"prompt": "jump", **FAST, **f},
                    files={"image": ("s.png", PNG, "image/png")}) for f in fields))

        same = asyncio.run(burst([{"request_id": uuid.uuid4().hex} for _ in range(4)]))
        assert [r.status_code for r in same] == [200] * 4
        assert [r.headers["x-batch-size"] for r in same] == ["4"] * 4
        assert all(len(frames_of(r.content)) == 8 for r in same)
        assert httpx.get(srv.url + "/v1/stats").json()["batch_sizes"] == {"4": 1}

        # Item i of a batch is seeded seed + i (X-Seed); that seed sent alone reproduces it.
        assert sorted(r.headers["x-seed"] for r in same) == ["0", "1", "2", "3"]
        third = next(r for r in same if r.headers["x-seed"] == "2")
        alone = asyncio.run(burst([{"seed": "2"}]))[0]
        assert alone.headers["x-batch-size"] == "1" and alone.headers["x-seed"] == "2"
        a, b = np.stack(frames_of(third.content)).astype(int), np.stack(frames_of(alone.content)).astype(int)
        c = np.stack(frames_of(next(r for r in same if r.headers["x-seed"] == "1").content)).astype(int)
        # Same noise: only float rounding of batched kernels differs (a few levels where alpha is low).
        assert np.abs(a - b).mean() < 0.1 and (np.abs(a - b) > 1).mean() < 0.001
        assert np.abs(c - b).mean() > 2.0  # another seed really differs

        # Different sampling settings never share a batch.
        mixed = asyncio.run(burst([{"steps": "2"}, {"steps": "3"}]))
        assert [r.status_code for r in mixed] == [200, 200]
        assert [r.headers["x-batch-size"] for r in mixed] == ["1", "1"]
        assert httpx.get(srv.url + "/v1/stats").json()["batch_sizes"] == {"1": 3, "4": 1}


def test_service_endpoints_describe_the_model_and_serve_the_page(server, pipeline):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/healthz").json() == {"status": "ok", "model_loaded": True, "waiting": 0}
        info = client.get("/v1/info").json()
        assert info["model"]["resolution"] == 64 and info["model"]["num_frames"] == 8
        assert info["defaults"]["steps"] == pipeline.model.sampling.steps
        assert info["generate"] is False and "telegram" in info["presets"]
        assert client.post("/v1/generate", data={"prompt": "a cat"}).status_code == 501
        spec = client.get("/openapi.json").json()
        assert "multipart/form-data" in spec["paths"]["/v1/animate"]["post"]["requestBody"]["content"]
        assert "swagger" in client.get("/docs").text.lower()
        page = client.get("/")
        assert page.status_code == 200 and 'id="animate-btn"' in page.text
        assert client.get("/static/app.js").status_code == 200
        assert client.get("/v1/results/unknown").status_code == 404
        assert client.get("/v1/progress/unknown").json()["error"]


def test_generate_makes_a_still_sticker_when_a_text_to_image_model_is_loaded():
    t2i = TextToImagePipeline(StickerModel.create(model_config("tiny", overrides=TINY), video=False).eval())
    loads = []

    def factory() -> AnimatePipeline:  # create_app may take a factory: called once, at startup
        loads.append(1)
        return AnimatePipeline(StickerModel.create(model_config("tiny", overrides=TINY)).eval())

    app = create_app(factory, ServeSettings(max_batch=2, queue_size=4), generator=t2i)
    assert loads == []
    with ServerThread(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        assert loads == [1]
        assert client.get("/v1/info").json()["generate"] is True
        r = client.post("/v1/generate", data={"prompt": "a smiling cat", "steps": "2"})
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(r.content)) as im:
            assert im.mode == "RGBA" and im.size == (64, 64)
        assert client.post("/v1/generate", data={"prompt": " "}).status_code == 422
        assert post_animate(client, PNG).status_code == 200
    assert loads == [1]
