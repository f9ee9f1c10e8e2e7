"""`stickers info`: the size presets and their UNet parameter counts (built on the meta device)."""

from __future__ import annotations

import json

import typer

from ..errors import one_line_errors


def preset_info(name: str) -> dict:
    """Build preset `name`'s inflated UNet and VAE on the meta device (no memory) and count weights."""
    import torch

    from ..config import PAPER_UNET_PARAMS, model_config
    from .unet import StickerUNet, count_parameters
    from .vae import RGBAVAE

    cfg = model_config(name)
    with torch.device("meta"):
        unet = StickerUNet(cfg).inflate()
        vae = RGBAVAE(cfg.vae)
    n = count_parameters(unet)
    paper = PAPER_UNET_PARAMS.get(name)
    return {
        "preset": name,
        "unet_params": n,
        "unet_params_b": round(n / 1e9, 3),
        "paper_unet_params_b": paper / 1e9 if paper else None,
        "rel_error_vs_paper": round(n / paper - 1, 4) if paper else None,
        "vae_params": count_parameters(vae),
        "latent_channels": cfg.vae.latent_channels,
        "resolution": cfg.resolution,
        "latent_size": cfg.latent_size,
        "text_encoders": [e.kind for e in cfg.text.encoders],
    }


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def info(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List the model presets (tiny, sm, med, lg, lg-e) with their UNet parameter counts."""
        from ..config import PRESETS

        rows = [preset_info(p) for p in PRESETS]
        if as_json:
            typer.echo(json.dumps({"presets": rows}, indent=2))
            return
        for r in rows:
            paper = ""
            if r["paper_unet_params_b"]:
                paper = f" (paper {r['paper_unet_params_b']}B, {r['rel_error_vs_paper']:+.1%})"
            typer.echo(f"{r['preset']:>5}: UNet {r['unet_params'] / 1e6:,.1f}M{paper}, "
                       f"VAE {r['vae_params'] / 1e6:.1f}M, {r['resolution']}px -> "
                       f"{r['latent_size']}x{r['latent_size']}x{r['latent_channels']}, "
                       f"text {'+'.join(r['text_encoders'])}")
