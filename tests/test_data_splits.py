"""Held-out split by hash of the base emoji: stable, skin tones together, about 10% held out."""

from animated_stickers.data.captions import normalise
from animated_stickers.data.splits import heldout_score, split_key, split_of

TONES = ["1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"]


def test_skin_tones_and_spellings_never_straddle():
    for base in ["1f3c3-200d-2642-fe0f", "1f44b", "270c-fe0f", "1f469-200d-1f692"]:
        head, *rest = base.split("-")
        names = [base, f"assets/{base}.webp"] + ["-".join([head, t, *rest]) + ".webp" for t in TONES]
        assert len({split_key(n) for n in names}) == 1
        assert len({split_of(n) for n in names}) == 1
    assert split_of("0023-fe0f-20e3") == split_of("23-20e3.gif")


def test_split_is_stable_and_about_ten_percent():
    bases = [format(c, "x") for c in range(0x1F300, 0x1F300 + 2000)]
    held = [b for b in bases if split_of(b) == "heldout"]
    assert 0.08 < len(held) / len(bases) < 0.12
    # stable: the score is a pure function of the key (no process-randomised hash())
    assert heldout_score("1f600") == heldout_score("a/b/1F600.webp")
    assert split_of(bases[0], heldout_fraction=1.0) == "heldout"
    assert split_of(bases[0], heldout_fraction=0.0) == "train"


def test_non_emoji_names_split_by_stem():
    assert split_key("/videos/My Cat.mp4") == "my cat"
    assert split_of("/videos/My Cat.mp4") == split_of("other/my cat.webm")
    assert normalise("1F600") == "1f600"
