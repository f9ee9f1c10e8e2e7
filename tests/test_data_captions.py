"""Captions from emoji code-point stems: normalisation, CLDR labels/keywords, emoji-package fallback."""

import gzip
import json

import pytest

from animated_stickers.data import captions
from animated_stickers.data.captions import CaptionError, base_key, caption_for, codepoints, normalise


def test_leading_zeros_and_case_are_normalised():
    assert normalise("0023-FE0F-20E3") == normalise("23-fe0f-20e3") == "23-fe0f-20e3"
    assert caption_for("0023-fe0f-20e3") == caption_for("23-fe0f-20e3")


def test_skin_tone_caption_and_base():
    cap = caption_for("1f3c3-1f3fd-200d-2642-fe0f")
    assert cap.text.startswith("man running, medium skin tone; ")
    assert cap.skin_tones == ["medium skin tone"]
    assert "marathon" in cap.keywords
    # all tones (and the untoned emoji) share one base key
    assert cap.base == base_key("1f3c3-200d-2642-fe0f") == base_key("1F3C3-1F3FF-200D-2642-FE0F")
    assert "1f3fd" not in cap.base.split("-")


def test_caption_keywords_do_not_repeat_label_words():
    cap = caption_for("1f600")
    label_words = set(cap.label.split())
    shown = cap.text.split("; ", 1)[1].split(", ")
    assert 1 <= len(shown) <= 3 and not label_words & set(shown)
    assert all(k in cap.keywords for k in shown)


def test_subdivision_flag_with_underscores_gets_cancel_tag():
    cps = codepoints("1f3f4-e0067_e0062_e0065_e006e_e0067")
    assert cps[-1] == 0xE007F
    assert "England" in caption_for("1f3f4-e0067_e0062_e0065_e006e_e0067").text


def test_not_codepoints_is_one_clear_error():
    with pytest.raises(CaptionError, match="'hello': expected hexadecimal"):
        caption_for("hello")
    with pytest.raises(CaptionError, match="not a known emoji"):
        caption_for("e000")  # private use area


def test_fallback_to_emoji_package_without_table(tmp_path, monkeypatch):
    monkeypatch.setattr(captions, "KEYWORD_TABLE", tmp_path / "missing.json.gz")
    captions._table.cache_clear()
    captions._caption_cached.cache_clear()
    try:
        cap = caption_for("1f469-1f3fb-200d-1f692")
        assert cap.source == "emoji"
        assert cap.text == "woman firefighter, light skin tone"
        assert cap.keywords == []
    finally:
        captions._table.cache_clear()
        captions._caption_cached.cache_clear()


def test_build_keyword_table_from_emojibase_layout(tmp_path, monkeypatch):
    pkg = tmp_path / "emojibase-data"
    (pkg / "en").mkdir(parents=True)
    (pkg / "package.json").write_text('{"version": "9.9.9"}')
    (pkg / "en" / "data.json").write_text(json.dumps([{
        "label": "waving hand", "hexcode": "1F44B", "tags": ["wave", "hello"],
        "skins": [{"label": "waving hand: dark skin tone", "hexcode": "1F44B-1F3FF"}]}]))
    out = captions.build_keyword_table(pkg, tmp_path / "table.json.gz")
    with gzip.open(out, "rt") as f:
        table = json.load(f)
    assert table["labels"]["1f44b-1f3ff"] == "waving hand: dark skin tone"
    assert table["tags"]["1f44b"] == ["hello", "wave"]
    assert table["source"] == "emojibase-data 9.9.9"
    monkeypatch.setattr(captions, "KEYWORD_TABLE", out)
    captions._table.cache_clear()
    captions._caption_cached.cache_clear()
    try:
        assert caption_for("1f44b-1f3ff").text == "waving hand, dark skin tone; hello, wave"
    finally:
        captions._table.cache_clear()
        captions._caption_cached.cache_clear()


def test_shipped_table_is_present():
    assert captions.has_keyword_table()
