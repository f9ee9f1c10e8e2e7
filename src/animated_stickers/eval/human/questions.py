"""The paper's annotation guideline (section 4.1): 10 motion-quality and 4 prompt-similarity questions.

For each question an annotator selects either "yes" or one or more failure reasons. The question
texts are the paper's; the failure reasons are ours (the paper does not list them). Annotators fail
a question if any single frame fails it (paper 4.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

YES = "yes"
MOTION, PROMPT = "motion", "prompt"


@dataclass(frozen=True)
class Reason:
    """One failure reason an annotator can tick."""

    key: str
    label: str


@dataclass(frozen=True)
class Question:
    """One evaluation criterion: its key, task (motion | prompt), title, question text and failure reasons."""

    key: str
    task: str
    title: str
    text: str
    reasons: tuple[Reason, ...]

    @property
    def reason_keys(self) -> frozenset[str]:
        return frozenset(r.key for r in self.reasons)


def _q(key: str, task: str, text: str, *reasons: tuple[str, str]) -> Question:
    title = key.replace("_", " ").capitalize()
    return Question(key, task, title, text, tuple(Reason(k, v) for k, v in reasons) + (Reason("other", "Other"),))


MOTION_QUESTIONS: tuple[Question, ...] = (
    _q("existence", MOTION, "Is there any motion in the animated sticker?",
       ("static", "No motion at all: the frames are identical"),
       ("barely_visible", "Motion is too small to notice"),
       ("secondary_only", "Only tiny secondary motion, no primary motion of the subject")),
    _q("relevance", MOTION, "Is the motion in the animated sticker expected and relevant to the prompt?",
       ("unrelated_action", "The motion does not match the action in the prompt"),
       ("bulk_motion_only", "Only bulk motion (the whole sticker shifts, bobs, rotates or zooms)"),
       ("wrong_part_moves", "The wrong subject or body part moves"),
       ("ambiguous", "The purpose of the motion is unclear or open to misinterpretation")),
    _q("consistency", MOTION,
       "Do the characters and objects remain in proportion and consistent throughout the animation?",
       ("proportions_change", "Proportions or size change between frames"),
       ("morphing", "Shapes morph into something else"),
       ("identity_drift", "Colours, style or identity drift away from the sticker"),
       ("parts_appear_disappear", "Parts appear, vanish or duplicate")),
    _q("distortions", MOTION, "Is the animated sticker free of any flicker or distortion?",
       ("flicker", "Flicker: colours or brightness jump between frames"),
       ("warping", "Warping or melting of shapes"),
       ("blur", "Blurry or smeared frames"),
       ("noise_artifacts", "Noise, speckles or compression artifacts")),
    _q("motion_curves", MOTION,
       "Does the animation utilize smooth motion curves that reference real physics/ gravity?",
       ("jerky", "Jerky or stuttering motion"),
       ("unnatural_physics", "Motion ignores gravity or real physics"),
       ("sudden_jumps", "Sudden jumps between frames"),
       ("too_fast_or_slow", "Far too fast or too slow")),
    _q("outline", MOTION, "Does the linework/ white outline of the sticker move with the motion of the sticker?",
       ("outline_static", "The outline stays put while the body moves"),
       ("outline_broken", "The outline breaks, thins or disappears"),
       ("outline_detached", "The outline drifts away from the body"),
       ("outline_flicker", "The outline flickers")),
    _q("looping", MOTION, "Does the animation play in a continuous loop?",
       ("jump_at_loop", "Visible jump from the last frame back to the first"),
       ("ends_abruptly", "The motion stops abruptly before the loop restarts"),
       ("does_not_repeat", "The animation plays once and does not repeat")),
    _q("clipping", MOTION, "Are there no integral elements of the animated sticker clipped?",
       ("cut_by_border", "Part of the subject is cut off by the canvas border"),
       ("parts_missing", "Integral parts of the subject are missing in some frames"),
       ("occluded", "Elements are wrongly hidden behind other elements")),
    _q("expression", MOTION, "Are the expressions in the animated sticker clear?",
       ("face_distorted", "The face or features are distorted"),
       ("expression_unclear", "The expression is ambiguous or hard to read"),
       ("wrong_emotion", "The expression shows a different emotion than intended")),
    _q("background", MOTION, "Does background motion complement and not distract from the primary animation?",
       ("distracting_motion", "Background motion distracts from the primary animation"),
       ("not_transparent", "The background is not transparent (solid fill, box or halo)"),
       ("background_noise", "Noise or speckles appear around the sticker")),
)

PROMPT_QUESTIONS: tuple[Question, ...] = (
    _q("subjects", PROMPT,
       "Does the animated sticker clearly represent all subjects or objects intended in the prompt?",
       ("subject_missing", "A subject or object from the prompt is missing"),
       ("wrong_subject", "A subject is shown as something else"),
       ("extra_subject", "Subjects not in the prompt were added")),
    _q("actions", PROMPT,
       "Does the animated sticker effectively depict all specific actions or movements, as stated in the prompt?",
       ("action_missing", "An action from the prompt is not shown"),
       ("wrong_action", "A different action is shown"),
       ("action_incomplete", "The action is only partly shown")),
    _q("composition", PROMPT,
       "Does the animated sticker depict the desired arrangement and quantity of the subjects or objects "
       "specified in the prompt?",
       ("wrong_count", "Wrong number of subjects or objects"),
       ("wrong_arrangement", "Wrong arrangement or positions")),
    _q("attributes", PROMPT,
       "Does the animated sticker include all attributes (e.g., colors, shapes, sizes) and emotions of subjects "
       "or objects specified in the prompt?",
       ("wrong_color", "Wrong colours"),
       ("wrong_shape_size", "Wrong shapes or sizes"),
       ("wrong_emotion", "Wrong or missing emotion")),
)

QUESTIONS: tuple[Question, ...] = MOTION_QUESTIONS + PROMPT_QUESTIONS
QUESTION_BY_KEY: dict[str, Question] = {q.key: q for q in QUESTIONS}

# HITL filtering (paper 2.3): one pseudo-question per group of candidates.
HITL_QUESTION = "shareable"
HITL_CANDIDATES = 6
NONE_OF_THESE = "I wouldn't share any of these"


class AnswerError(ValueError):
    """A submitted answer set that does not fit the questions; the message is one line."""


def parse_verdicts(raw: Mapping[str, object]) -> dict[str, tuple[bool, list[str]]]:
    """Check a full answer set {question: "yes" | [reason, ...]} -> {question: (passed, sorted reasons)}."""
    if not isinstance(raw, Mapping):
        raise AnswerError("answers must be an object mapping each question to \"yes\" or a list of reasons")
    unknown = sorted(set(raw) - set(QUESTION_BY_KEY))
    if unknown:
        raise AnswerError(f"unknown question {unknown[0]!r}; expected one of {', '.join(QUESTION_BY_KEY)}")
    missing = [k for k in QUESTION_BY_KEY if k not in raw]
    if missing:
        raise AnswerError(f"no answer for question {missing[0]!r}; every question needs \"yes\" or a reason")
    out: dict[str, tuple[bool, list[str]]] = {}
    for q in QUESTIONS:
        value = raw[q.key]
        if value == YES:
            out[q.key] = (True, [])
            continue
        if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
            raise AnswerError(f"answer to {q.key!r} must be \"yes\" or a non-empty list of failure reasons")
        bad = sorted(set(value) - q.reason_keys)
        if bad:
            raise AnswerError(f"unknown failure reason {bad[0]!r} for {q.key!r}; "
                              f"expected some of {', '.join(sorted(q.reason_keys))}")
        out[q.key] = (False, sorted(set(value)))
    return out


def questions_as_json() -> list[dict]:
    """The questions for the web page, in display order."""
    return [{"key": q.key, "task": q.task, "title": q.title, "text": q.text,
             "reasons": [{"key": r.key, "label": r.label} for r in q.reasons]} for q in QUESTIONS]
