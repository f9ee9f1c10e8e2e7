"""One settings object (issue 27 part 1): the CLI options, the HTTP form and the one check all come from
config.SamplingConfig's field metadata, so a new setting is written once."""

# No `from __future__ import annotations`: FastAPI must see the form built in `_http` as a class.

import dataclasses
from typing import Annotated

import pytest
import typer
from fastapi import FastAPI, Form
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from animated_stickers.config import SamplingConfig, from_dict, setting, to_dict
from animated_stickers.errors import UserError
from animated_stickers.sampling.options import cli_settings, settings_options
from animated_stickers.sampling.params import SettingError, check_params, from_flags, settings
from animated_stickers.serve.form import given_settings, http_settings, settings_form


@dataclasses.dataclass
class WithWobble(SamplingConfig):
    """SamplingConfig plus one dummy setting, as a developer would add it: one field, nothing else."""

    wobble: float = setting(0.0, "How much the sticker wobbles.", range=(0, 1), old_names=("jiggle",))


def _cli(cls: type) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @settings_options(cls=cls)
    def animate(settings: dict | None = None) -> None:
        params = from_flags(cls(), settings or {})
        print(to_dict(params))

    return app


def _http(cls: type) -> FastAPI:
    app = FastAPI()
    Form_ = settings_form("F", {}, cls=cls)

    @app.post("/x")
    def x(form: Annotated[Form_, Form()]) -> dict:
        try:
            return to_dict(from_flags(cls(), given_settings(form, cls=cls)))
        except SettingError as e:
            return {"error": f"field '{e.name}': {e}"}

    return app


def test_a_new_setting_reaches_the_cli_the_form_and_the_check_with_no_other_change():
    run = CliRunner().invoke
    ok = run(_cli(WithWobble), ["--wobble", "0.5", "--steps", "3"])
    assert ok.exit_code == 0, ok.output
    assert "'wobble': 0.5" in ok.output and "'steps': 3" in ok.output
    assert "'wobble': 0.25" in run(_cli(WithWobble), ["--jiggle", "0.25"]).output  # deprecated name
    bad = run(_cli(WithWobble), ["--wobble", "2"])
    assert bad.exit_code != 0 and isinstance(bad.exception, UserError)
    assert str(bad.exception) == "wobble=2.0: expected 0 to 1"
    client = TestClient(_http(WithWobble))
    assert client.post("/x", data={"wobble": "0.5"}).json()["wobble"] == 0.5
    assert client.post("/x", data={"jiggle": "0.5"}).json()["wobble"] == 0.5
    assert client.post("/x", data={"wobble": "2"}).json() == {"error": "field 'wobble': wobble=2.0: expected 0 to 1"}
    assert from_dict(WithWobble, {"jiggle": 0.75}).wobble == 0.75  # an old config.json key still loads
    schema = client.get("/openapi.json").json()["components"]["schemas"]["F"]["properties"]["wobble"]
    assert schema["minimum"] == 0 and schema["maximum"] == 1 and "wobbles" in schema["description"]


def test_every_setting_is_described_and_the_surfaces_offer_the_marked_ones():
    every = settings()
    assert [s.field for s in every] == [f.name for f in dataclasses.fields(SamplingConfig)]
    assert all(s.help and (s.range or s.choices or s.kind is bool) for s in every)
    assert {s.field for s in cli_settings()} == {s.field for s in every if s.cli}
    offered = {s.name for s in http_settings()}
    assert offered == {s.name for s in every if s.http}
    assert {"steps", "seed", "frames", "prompt_motion", "room", "render"} <= offered
    assert not {"scheduler", "dtype", "anchor", "harmonics"} & offered  # machine and model matters stay off HTTP


@pytest.mark.parametrize("change, words", [
    ({"steps": 0}, "steps=0: expected 1 to 1000"),
    ({"num_frames": 999}, "frames=999: expected 2 to 300"),
    ({"seconds": 0.2}, "seconds=0.2: expected 0.5 to 10"),
    ({"motion_preset": "moonwalk"}, "motion_preset 'moonwalk': expected one of bounce, hop"),
    ({"image_guidance": 31.0}, "image_guidance=31.0: expected 0 to 30"),
    ({"render": "paint"}, "render 'paint': expected one of warp, fuse"),
    ({"guided_steps": -1}, "guided_steps=-1: expected 0 or more"),
    ({"seed": -1}, "seed=-1: expected 0 to 2147483647"),
])
def test_one_check_one_set_of_words(change, words):
    with pytest.raises(SettingError, match=words):
        check_params(dataclasses.replace(SamplingConfig(), **change))


def test_solver_and_render_settings_split_but_one_flat_config():
    from animated_stickers.config import RenderSettings, SolverSettings

    assert issubclass(SamplingConfig, SolverSettings) and issubclass(SamplingConfig, RenderSettings)
    render = {f.name for f in dataclasses.fields(RenderSettings)}
    solver = {f.name for f in dataclasses.fields(SolverSettings)}
    assert {"prompt_motion", "room", "render", "paste_input"} <= render and {"steps", "seed", "num_frames"} <= solver
    assert not render & solver and render | solver == {f.name for f in dataclasses.fields(SamplingConfig)}
    assert from_dict(SamplingConfig, to_dict(SamplingConfig(steps=4))) == SamplingConfig(steps=4)
