"""Reading a speaker's look: the traits a cartoon portrait can show, from what a screenplay says of them.

A speaker's *look* comes from free text: a JSON screenplay's cast entry (``look``, ``appearance``,
``description``, ``role``), a ``looks`` map, the LLM screenplay's character ``look``, or the request's
``looks`` (speaker -> text, over the screenplay's). :func:`read_look` turns that text into traits with a small
keyword reader (no model, no network; pure, so the script reader, the workflow and the CPU rung's drawing can
all use it):
=============  =======================================================================================
trait          read from (case-insensitive words; ``no``/``without``/``not`` just before negates)
=============  =======================================================================================
``gender``     ``"male"`` / ``"female"`` by a vote: person nouns (man, woman, boy, lady, king, mother,
               ...) count 2, pronouns (he/his/him, she/her) 1; a tie leaves it unset
``age``        ``"old"`` (old, elderly, aged, elder, greying, grandfather, grey or white hair or beard,
               "in his sixties", "70-year-old", "aged 70": 55 or more) or ``"young"`` (young, youthful,
               teenage, student, girl, boy, "in her twenties", 30 or less)
``hair``       a colour name (black, brown, blond, red, grey, white, ...) said of hair ("grey hair",
               "red-haired", "a redhead", "silver curls")
``hair_style`` ``bald`` (bald, balding, shaved head), ``long``, ``short``, ``curly``, ``bun``, ``bob``,
               ``buzz`` (buzz/crew cut), ``ponytail`` (drawn as long)
``beard``      True for beard/bearded/goatee, False for clean-shaven or "no beard"; ``beard_colour``
               when a colour is said of it ("a grey beard")
``moustache``  True for moustache/mustache (also False for clean-shaven)
``glasses``    True for glasses/spectacles/bespectacled/monocle; False for "no glasses"
``clothing``   a colour name said of a garment (shirt, toga, robe, dress, jacket, suit, ...) and
``garment``    the garment's kind for the drawing (``toga``, ``robe``, ``suit``, ``hoodie``, ``tee``, ...)
``skin``       ``light``/``medium``/``tan``/``brown``/``dark`` only when said of skin or complexion
               ("dark-skinned", "olive complexion", "pale skin", "tanned")
=============  =======================================================================================

A structured ``look`` (an object such as ``{"gender": "man", "hair": "grey", "beard": true}``) is first
written as text by :func:`look_text` and read the same way. Anything the text does not state stays unset, and
the portrait draws it from the speaker's hash as before (deterministic per speaker).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["COLOURS", "read_look", "look_text", "look_phrase", "title_gender"]

COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (30, 26, 28), "dark": (48, 36, 30), "brown": (104, 66, 40), "chestnut": (120, 64, 36),
    "brunette": (86, 54, 34), "auburn": (140, 58, 34), "red": (176, 52, 40), "ginger": (198, 96, 40),
    "copper": (184, 98, 52), "blond": (232, 196, 112), "blonde": (232, 196, 112), "golden": (226, 180, 70),
    "fair": (236, 206, 140), "sandy": (206, 172, 118), "grey": (160, 160, 166), "gray": (160, 160, 166),
    "silver": (196, 198, 206), "white": (238, 238, 240), "blue": (46, 100, 196), "navy": (36, 48, 104),
    "green": (62, 150, 84), "olive": (112, 120, 60), "yellow": (236, 198, 52), "orange": (234, 128, 44),
    "purple": (120, 70, 168), "violet": (140, 90, 190), "pink": (228, 120, 164), "crimson": (170, 30, 50),
    "maroon": (110, 30, 40), "teal": (40, 140, 140), "turquoise": (56, 188, 180), "beige": (214, 196, 160),
    "cream": (240, 230, 200), "tan": (196, 160, 112), "khaki": (180, 164, 110), "scarlet": (210, 34, 30),
    "indigo": (60, 50, 130), "burgundy": (120, 26, 48), "charcoal": (60, 62, 68),
}
"""Colour words -> RGB (sRGB 0-255), for hair, beards and clothing."""
_HAIR_ONLY = {"blond", "blonde", "brunette", "auburn", "ginger", "sandy", "chestnut", "fair"}
_SKINS = {"pale": "light", "fair": "light", "light": "light", "white": "light", "olive": "medium",
          "medium": "medium", "tan": "tan", "tanned": "tan", "bronzed": "tan", "brown": "brown",
          "dark": "dark", "black": "dark", "ebony": "dark"}

_MALE = {"man": 2, "men": 2, "male": 2, "boy": 2, "gentleman": 2, "guy": 2, "father": 2, "dad": 2, "king": 2,
         "prince": 2, "lord": 2, "sir": 2, "husband": 2, "brother": 2, "son": 2, "uncle": 2, "grandfather": 2,
         "grandpa": 2, "monk": 2, "mr": 2, "actor": 2, "waiter": 2, "nephew": 2, "businessman": 2, "fellow": 2,
         "he": 1, "him": 1, "his": 1, "himself": 1}
_FEMALE = {"woman": 2, "women": 2, "female": 2, "girl": 2, "lady": 2, "mother": 2, "mum": 2, "mom": 2,
           "queen": 2, "princess": 2, "wife": 2, "sister": 2, "daughter": 2, "aunt": 2, "grandmother": 2,
           "grandma": 2, "nun": 2, "mrs": 2, "ms": 2, "miss": 2, "madam": 2, "actress": 2, "waitress": 2,
           "niece": 2, "businesswoman": 2, "she": 1, "her": 1, "hers": 1, "herself": 1}
_OLD = {"old", "elderly", "aged", "ageing", "aging", "ancient", "senior", "grandfather", "grandmother", "grandpa",
        "grandma", "greybeard", "graybeard", "wrinkled", "veteran", "elder", "greying", "graying", "wizened"}
_YOUNG = {"young", "youthful", "youth", "teenage", "teenager", "teen", "student", "child", "kid", "boy", "girl",
          "schoolboy", "schoolgirl", "adolescent"}
_DECADES = {"teens": 15, "twenties": 25, "thirties": 35, "forties": 45, "fifties": 55, "sixties": 65,
            "seventies": 75, "eighties": 85, "nineties": 95}
_HAIR_NOUNS = {"hair", "haired", "locks", "curls", "mane", "ponytail", "bun", "braids", "plaits", "fringe"}
_BEARD_NOUNS = {"beard", "bearded", "goatee", "whiskers", "stubble"}
_GARMENTS = {"shirt": "collar", "blouse": "collar", "toga": "toga", "robe": "robe", "robes": "robe",
             "gown": "robe", "cloak": "robe", "tunic": "toga", "chiton": "toga", "dress": "vneck",
             "jacket": "suit", "blazer": "suit", "suit": "suit", "coat": "suit", "tuxedo": "suit",
             "uniform": "suit", "sweater": "tee", "jumper": "tee", "cardigan": "vneck", "tee": "tee",
             "tshirt": "tee", "top": "tee", "hoodie": "hoodie", "sweatshirt": "hoodie", "polo": "collar",
             "vest": "vneck", "waistcoat": "suit", "kimono": "robe", "sari": "robe", "shawl": "robe",
             "clothes": None, "clothing": None, "outfit": None, "attire": None,}
_ACCESSORIES = {"scarf", "tie", "hat", "cap", "trousers", "jeans", "skirt", "shoes", "boots", "bag", "eyes", "eyed",
                "lipstick", "nails", "gloves", "socks", "belt", "bow"}   # a colour said of these is not drawn
_NEGATIONS = {"no", "without", "not", "never", "lacks"}
_AGE_NUM = re.compile(r"\b(\d{1,3})\s*(?:-|\s)?\s*(?:years?|yrs?)(?:\s*-?\s*old)?\b|\baged?\s+(\d{1,3})\b")
_TOKEN = re.compile(r"[a-z0-9]+|[.,;:!?()]")


def _tokens(text: str) -> list[str]:
    t = text.casefold().replace("t-shirt", "tshirt").replace("t shirt", "tshirt").replace("moustache", "mustache")
    return _TOKEN.findall(t)


def _negated(toks: list[str], i: int) -> bool:
    """Whether one of the two words before ``toks[i]`` (within its clause) negates it."""
    for j in (i - 1, i - 2):
        if j < 0 or toks[j] in ".,;:!?()":
            return False
        if toks[j] in _NEGATIONS:
            return True
    return False


def _said_of(toks: list[str], i: int, nouns: set[str] | dict, reach: int = 3) -> int | None:
    """Index of the first word of ``nouns`` within ``reach`` words after ``toks[i]``, in its clause (and not past
    another colour word's own noun)."""
    for j in range(i + 1, min(len(toks), i + 1 + reach)):
        if toks[j] in ".,;:!?()" or toks[j] in ("and", "with", "in", "wearing"):
            return None
        if toks[j] in nouns:
            return j
    return None


def read_look(text: str | None) -> dict[str, Any]:
    """The traits of a speaker's look stated in ``text`` (see the module's table): a dict with only the keys
    the text states, e.g. ``read_look("an old bearded man with grey hair, in a white toga")`` ->
    ``{"gender": "male", "age": "old", "beard": True, "hair": "grey", "clothing": "white", "garment": "toga"}``.
    Colours are names of :data:`COLOURS`. Pure and deterministic; never raises on any string (``None`` and ""
    give ``{}``)."""
    if not text or not text.strip():
        return {}
    toks = _tokens(text)
    out: dict[str, Any] = {}
    votes = {"male": 0, "female": 0}
    age_votes = {"old": 0, "young": 0}
    for i, w in enumerate(toks):
        neg = _negated(toks, i)
        if w in _MALE and not neg:
            votes["male"] += _MALE[w]
        if w in _FEMALE and not neg:
            votes["female"] += _FEMALE[w]
        if w in _OLD and not neg:
            age_votes["old"] += 1
        if w in _YOUNG and not neg and not (w in ("boy", "girl") and "old" in toks):
            age_votes["young"] += 1
        if w in _DECADES and i > 0 and toks[i - 1] in ("his", "her", "their", "the", "early", "late", "mid"):
            age_votes["old" if _DECADES[w] >= 55 else "young" if _DECADES[w] <= 30 else "middle"] = 9
        if w in ("bald", "balding") and not neg:
            out["hair_style"] = "bald"
        elif w in ("shaved", "shaven") and i + 1 < len(toks) and toks[i + 1] == "head":
            out["hair_style"] = "bald"
        elif w == "clean" and i + 1 < len(toks) and toks[i + 1] in ("shaven", "shaved"):
            out.setdefault("beard", False)
            out.setdefault("moustache", False)
        elif w in _BEARD_NOUNS and w != "stubble":
            out["beard"] = not neg
        elif w == "mustache":
            out["moustache"] = not neg
        elif w in ("glasses", "spectacles", "bespectacled", "monocle", "eyeglasses", "specs"):
            out["glasses"] = not neg
        elif w in ("curly", "curls", "frizzy", "afro"):
            out.setdefault("hair_style", "curly")
        elif w in ("bun", "ponytail"):
            out.setdefault("hair_style", "long" if w == "ponytail" else w)
        elif w == "bob" and i > 0 and (toks[i - 1] in ("a", "short", "neat", "sleek") or toks[i - 1] in COLOURS):
            out.setdefault("hair_style", "bob")
        elif w in ("buzz", "crew") and i + 1 < len(toks) and toks[i + 1] == "cut":
            out["hair_style"] = "buzz"
        elif w in ("long", "short", "cropped") and _said_of(toks, i, _HAIR_NOUNS, 3) is not None:
            out.setdefault("hair_style", "short" if w == "cropped" else w)
        elif w == "redhead":
            out["hair"] = "red"
        if w in _GARMENTS and _GARMENTS[w] and not neg:
            out.setdefault("garment", _GARMENTS[w])
        if w in COLOURS or w in _SKINS:
            j = _said_of(toks, i, _HAIR_NOUNS | _BEARD_NOUNS | set(_GARMENTS) | _ACCESSORIES
                         | {"skin", "skinned", "complexion"})
            noun = toks[j] if j is not None else None
            if noun in ("skin", "skinned", "complexion") and w in _SKINS:
                out["skin"] = _SKINS[w]
            elif noun in _HAIR_NOUNS and w in COLOURS:
                out.setdefault("hair", "red" if w == "ginger" else w)
            elif noun in _BEARD_NOUNS and w in COLOURS:
                out["beard"] = True
                out.setdefault("beard_colour", w)
            elif noun in _GARMENTS and w in COLOURS and w not in _HAIR_ONLY:
                out.setdefault("clothing", w)
            elif noun is None and w in ("tanned", "bronzed"):
                out["skin"] = _SKINS[w]
            elif noun is None and w in _HAIR_ONLY and w != "fair":
                out.setdefault("hair", "blond" if w == "blonde" else w)
        if w in ("greying", "graying") and "hair" not in out:
            out["hair"] = "grey"
        if w in ("greybeard", "graybeard"):
            out["beard"], out["beard_colour"] = True, "grey"
    for m in _AGE_NUM.finditer(text.casefold()):
        years = int(m.group(1) or m.group(2))
        if 3 <= years <= 120:
            age_votes["old" if years >= 55 else "young" if years <= 30 else "middle"] = 9
    if votes["male"] != votes["female"]:
        out["gender"] = "male" if votes["male"] > votes["female"] else "female"
    if age_votes.get("middle") != 9:
        if age_votes["old"] > age_votes["young"]:
            out["age"] = "old"
        elif age_votes["young"] > age_votes["old"]:
            out["age"] = "young"
    if (out.get("hair") in ("grey", "gray", "white") or out.get("beard_colour") in ("grey", "gray", "white")) \
            and "age" not in out and age_votes["young"] == 0:
        out["age"] = "old"      # grey or white hair or beard: an old speaker unless the text gives an age
    if out.get("hair") == "gray":
        out["hair"] = "grey"
    if out.get("beard_colour") == "gray":
        out["beard_colour"] = "grey"
    if "beard" in out and out.get("gender") is None and out["beard"]:
        out["gender"] = "male"
    return out


_TITLE_MALE = frozenset("mr mister sir lord king prince duke earl count baron father brother uncle monsieur m herr "
                        "senor señor don signor signore".split())
_TITLE_FEMALE = frozenset("mrs ms miss lady dame queen princess duchess countess baroness mother sister aunt madam "
                          "madame mme mademoiselle mlle frau fräulein fraulein senora señora senorita señorita dona "
                          "doña signora signorina".split())


def title_gender(name: str) -> str | None:
    """``"male"`` / ``"female"`` when a speaker's name begins with a gendered title or kinship word (``Lady
    Bracknell``, ``Mrs. Higgins``, ``MR. WORTHING``, ``Sir Robert``, ``Madame Pernelle``, ``The Duchess``), else
    ``None``. A first name alone says nothing (``Ada``, ``Jack``): no name list is consulted."""
    words = [w.strip(".,'\u2019").casefold() for w in str(name).split()]
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    if len(words) < 1 or (len(words) == 1 and words[0] not in ("madam", "madame", "sir")):
        return None     # "Lady" or "King" alone may be a name; a title is followed by one
    first = words[0]
    return "male" if first in _TITLE_MALE else "female" if first in _TITLE_FEMALE else None


def look_text(value: Any) -> str:
    """A structured ``look`` as text for :func:`read_look`: ``{"gender": "man", "hair": "grey", "beard": true,
    "glasses": false, "age": 70, "clothing": "red"}`` -> ``"man; grey hair; beard; no glasses; 70 years old;
    red clothes"``. A string is returned as it is; lists are joined; other values give ""."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "; ".join(look_text(v) for v in value)
    if not isinstance(value, dict):
        return ""
    parts = []
    nouns = {"hair": "hair", "hair_colour": "hair", "hair_color": "hair", "skin": "skin", "skin_tone": "skin",
             "clothing": "clothes", "clothes": "clothes", "outfit": "clothes", "beard": "beard",
             "moustache": "moustache", "mustache": "moustache", "glasses": "glasses"}
    for key, v in value.items():
        k = str(key).strip().casefold().replace(" ", "_").replace("-", "_")
        if isinstance(v, bool):
            parts.append(("" if v else "no ") + nouns.get(k, k))
        elif isinstance(v, (int, float)) and k == "age":
            parts.append(f"{int(v)} years old")
        elif isinstance(v, str) and v.strip():
            parts.append(f"{v.strip()} {nouns[k]}" if k in nouns and nouns[k] not in v.casefold() else v.strip())
    return "; ".join(parts)


def look_phrase(traits: dict[str, Any] | None) -> str:
    """The traits of :func:`read_look` as a short English phrase for an image model's prompt:
    ``{"gender": "male", "age": "old", "hair": "grey", "beard": True, "clothing": "white", "garment": "toga"}`` ->
    ``"an old man with grey hair, a beard, wearing a white toga"``; ``""`` for no traits."""
    t = traits or {}
    person = {"male": "man", "female": "woman"}.get(t.get("gender") or "", "person")
    head = " ".join(filter(None, [t.get("age") if t.get("age") in ("old", "young") else None, person]))
    parts = []
    if t.get("hair_style") == "bald":
        parts.append("a bald head")
    elif t.get("hair") or t.get("hair_style"):
        parts.append(" ".join(filter(None, [t.get("hair_style"), t.get("hair"), "hair"])))
    if t.get("beard"):
        parts.append(f"a {t['beard_colour']} beard" if t.get("beard_colour") else "a beard")
    if t.get("moustache") and not t.get("beard"):
        parts.append("a moustache")
    if t.get("glasses"):
        parts.append("glasses")
    if t.get("skin"):
        parts.append(f"{t['skin']} skin")
    phrase = (("an " if head[0] in "aeiou" else "a ") + head) if (t and (head != "person" or parts)) else ""
    if parts:
        phrase += " with " + ", ".join(parts)
    if t.get("clothing") or t.get("garment"):
        garment = {"vneck": "dress", "collar": "shirt", "tee": "t-shirt"}.get(t.get("garment") or "", t.get("garment"))
        phrase += (", " if phrase else "") + "wearing " + " ".join(filter(None, ["a", t.get("clothing"),
                                                                                garment or "outfit"]))
    return phrase
