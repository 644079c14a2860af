"""Casting: a voice that agrees with a speaker's look, and the look the portrait is drawn with.

The look's traits come from :func:`streamwise.core.looks.read_look` (what the screenplay or the request says of
the speaker: gender presentation, age, hair, beard, glasses, clothing, skin tone); a gender the text leaves open
comes from a title the name begins with (``Lady Bracknell``, ``Mr. Worthing``: :func:`~streamwise.core.looks.title_gender`).

:func:`cast_voice` then makes the default voice agree with a stated gender presentation: a male-presenting
look gets a voice of the male-timbre model (``joe``), a female-presenting one the ``heart`` model, unless the
user or the screenplay named a voice; every speaker's voice stays distinct. :func:`portrait_look` gives the
portrait the traits plus, where the text did not state a gender, the one the speaker's voice has, so face and
voice agree by default too.
"""

from __future__ import annotations

from typing import Any

from ..core.looks import COLOURS, look_text, read_look, title_gender

__all__ = ["DEFAULT_VOICES", "words_per_speaker", "cast_show", "cast_speaker", "cast_voice", "portrait_look", "effective_voice",
           "voice_model"]

DEFAULT_VOICES: tuple[str, ...] = ("joe", "heart", "joe@0.86", "heart@1.12", "joe@1.12", "heart@0.9",
                                   "joe@0.8", "heart@1.06")
"""The speech stage's default voice (model and pitch) of speaker index ``i % 8``: the model and pitch columns of
``streamwise.stages.cpu.speech._TIMBRES`` (a test holds the two equal; the workflow may not import the stages)."""
_EXTRA_PITCHES = (0.94, 1.06, 0.9, 1.18, 0.76, 1.24)   # further distinct pitches once a model's defaults are taken
MODEL_GENDER = {"joe": "male", "heart": "female"}       # the timbre of the offline voice models
GENDER_MODEL = {g: m for m, g in MODEL_GENDER.items()}

def voice_model(voice: str) -> str:
    """``"joe@0.86"`` -> ``"joe"``: the model part of a voice name (casefolded)."""
    return voice.strip().casefold().partition("@")[0]


def _norm(voice: str) -> str:
    model, _, pitch = voice.strip().casefold().partition("@")
    try:
        return model if not pitch or float(pitch) == 1.0 else f"{model}@{float(pitch):g}"
    except ValueError:
        return voice.strip().casefold()


def cast_voice(index: int, look: dict[str, Any], named: str | None, earlier: list[str]) -> str | None:
    """The voice to give speaker ``index`` (0-based in the show) when no voice was named, or ``None`` for the
    speech stage's default (:data:`DEFAULT_VOICES` of the index).

    ``look`` is :func:`read_look`'s traits; ``named`` the voice the user or the screenplay named (then it is
    kept: returns ``None``, the caller passes ``named`` on); ``earlier`` the effective voices of speakers
    ``0 .. index-1`` (see :func:`effective_voice`). When the look states a gender whose model differs from the
    default's, or the default is already someone else's, the first voice of the wanted model (its default
    pitches, then :data:`_EXTRA_PITCHES`) nobody earlier speaks with is returned; so a described man speaks
    with a male-timbre voice, and no two speakers share one while distinct voices remain. A speaker whose look
    states no gender takes the model fewer earlier speakers have (timbre alternates first, as the defaults do),
    so with no look at all every speaker keeps the default of its index."""
    if named:
        return None
    default = DEFAULT_VOICES[index % len(DEFAULT_VOICES)]
    taken = {_norm(v) for v in earlier}
    want = GENDER_MODEL.get(look.get("gender") or "")
    if want is None:     # nothing stated: the timbre fewer earlier speakers have (the default's on a tie)
        count = {m: sum(voice_model(v) == m for v in earlier) for m in MODEL_GENDER}
        want = min(count, key=lambda m: (count[m], m != voice_model(default)))
    if voice_model(default) == want and _norm(default) not in taken:
        return None
    candidates = [v for v in DEFAULT_VOICES if voice_model(v) == want]
    if look.get("age") == "old":     # an old speaker: the lower pitches first
        candidates.sort(key=lambda v: float(v.partition("@")[2] or 1.0))
    candidates += [f"{want}@{p:g}" for p in _EXTRA_PITCHES]
    for v in candidates:
        if _norm(v) not in taken:
            return v
    return None if voice_model(default) == want else want


def effective_voice(index: int, voice: str | None) -> str:
    """The voice speaker ``index`` speaks with: ``voice`` when given, else the default of its index."""
    return voice or DEFAULT_VOICES[index % len(DEFAULT_VOICES)]


def portrait_look(look: dict[str, Any], voice: str) -> dict[str, Any]:
    """The traits the portrait is drawn with: ``look`` with ``gender`` filled from the voice's model where the
    text did not state one (``joe`` -> male, ``heart`` -> female), so face and voice agree by default."""
    out = dict(look)
    if "gender" not in out and voice_model(voice) in MODEL_GENDER:
        out["gender"] = MODEL_GENDER[voice_model(voice)]
    return out


def _key(name: str) -> str:
    return " ".join(str(name).casefold().split())


_TRAIT_VALUES: dict[str, Any] = {"gender": ("male", "female"), "age": ("old", "young"), "skin": ("light", "medium",
                                  "tan", "brown", "dark"), "hair_style": ("bald", "long", "short", "curly", "bun", "bob",
                                  "buzz"), "garment": ("toga", "robe", "suit", "hoodie", "tee", "collar", "vneck"),
                                  "hair": COLOURS, "beard_colour": COLOURS, "clothing": COLOURS,
                                  "beard": (True, False), "moustache": (True, False), "glasses": (True, False)}


def _as_traits(value: dict) -> dict[str, Any] | None:
    """``value`` itself when it already is a set of :func:`read_look` traits (as a plan's checkpoint keeps them),
    else ``None``."""
    ok = all(k in _TRAIT_VALUES and (isinstance(v, bool) == (k in ("beard", "moustache", "glasses")))
             and v in _TRAIT_VALUES[k] for k, v in value.items())
    return dict(value) if ok and value else None


def cast_speaker(voices: dict[int, str], index: int, name: str, request: Any, said: list[Any]) -> dict[str, Any]:
    """Cast the show's new speaker ``index`` (0-based, in the plan's order) called ``name``: sets
    ``voices[index]`` when the request names a voice for it (over the screenplay's, already in ``voices``) or when
    :func:`cast_voice` gives its look a voice other than the default, and returns the portrait's traits
    (:func:`portrait_look`). ``request`` has ``voices`` and ``looks`` (speaker name in any case -> voice / look
    text); ``said`` is ``[look]`` as the screenplay gives it for this speaker (text, a structured look, or
    nothing: ``[]`` / ``[None]``). The request's look replaces the screenplay's."""
    asked_voices = {_key(k): v for k, v in (getattr(request, "voices", None) or {}).items()}
    asked_looks = {_key(k): v for k, v in (getattr(request, "looks", None) or {}).items()}
    if (voice := asked_voices.get(_key(name))) is not None:
        voices[index] = voice
    asked = asked_looks.get(_key(name))
    look = _as_traits(said[0]) if not asked and said and isinstance(said[0], dict) else None
    if look is None:    # text (or a structured look in the screenplay's words): read it
        look = read_look(asked or (look_text(said[0]) if said and said[0] else ""))
    if "gender" not in look and (gender := title_gender(name)):   # "Lady Bracknell", "Mr. Worthing": the name says it
        look = {**look, "gender": gender}
    chosen = cast_voice(index, look, voices.get(index), [effective_voice(i, voices.get(i)) for i in range(index)])
    if chosen is not None:
        voices[index] = chosen
    return portrait_look(look, effective_voice(index, voices.get(index)))


def cast_show(voices: dict[int, str], names: list[str], request: Any, said: list[list[Any]],
              words: list[int]) -> list[dict[str, Any]]:
    """Cast a whole show at once (a script, whose every speaker and line is known before the first is spoken):
    speakers are cast in order of how much they say (``words[i]``, most first; ties by first appearance), so
    the two who speak most get the two timbres, whoever happens to speak first (a porter who opens the play).

    ``voices`` (plan index -> voice) holds the voices the screenplay named and is filled with every speaker's
    voice; ``names``, ``said`` (``[look]`` per speaker, as for :func:`cast_speaker`) and ``words`` are per plan
    index. Returns the portrait traits per plan index. With speakers already in order of words this gives the
    same voices as casting one by one (:func:`cast_speaker` in plan order)."""
    order = sorted(range(len(names)), key=lambda i: (-words[i], i))    # plan indices, most words first
    by_rank = {rank: voices[i] for rank, i in enumerate(order) if i in voices}
    looks: dict[int, dict[str, Any]] = {}
    for rank, i in enumerate(order):
        looks[i] = cast_speaker(by_rank, rank, names[i], request, said[i])
    for rank, i in enumerate(order):
        voice = effective_voice(rank, by_rank.get(rank))
        if i in voices or voice != effective_voice(i, None):
            voices[i] = voice
    return [looks[i] for i in range(len(names))]


def words_per_speaker(lines: list[dict[str, Any]], speakers: int) -> list[int]:
    """Words each speaker (0-based, the screenplay's order) says over ``lines`` (the screenplay's lines:
    ``{"speaker": int, "pieces": [str, ...]}``)."""
    words = [0] * speakers
    for line in lines:
        s = int(line.get("speaker", 0))
        if 0 <= s < speakers:
            words[s] += sum(len(str(piece).split()) for piece in line.get("pieces") or ())
    return words
