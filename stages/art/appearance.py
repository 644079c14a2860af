"""A portrait speaker's appearance (:mod:`stages.art.portrait` draws it): every random choice of one
speaker's look (skin, hair colour and style, shirt, eyes, glasses, face shape and size), drawn once in a
fixed order from a stable hash of (name, speaker index, seed), with the traits a look text states
(:func:`streamwise.workflow.cast.read_look`) overriding what they name (:func:`_look`, :func:`_traits`)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ...core.looks import COLOURS   # the colour names the look reader gives
from .drawing import RGB, SS, _hash, mix, shade


_SKINS: tuple[RGB, ...] = ((255, 222, 196), (242, 194, 160), (224, 170, 128), (196, 138, 98), (158, 104, 72),
                           (112, 74, 52))
_HAIRS: tuple[RGB, ...] = ((38, 32, 34), (78, 50, 34), (230, 190, 112), (188, 188, 194), (146, 56, 42), (196, 100, 46))
_SHIRTS: tuple[RGB, ...] = ((46, 134, 190), (222, 88, 72), (88, 164, 96), (238, 178, 64), (132, 88, 176), (64, 72, 92),
                            (226, 120, 164), (52, 160, 150), (176, 96, 56))
_IRIS: tuple[RGB, ...] = ((104, 64, 40), (66, 44, 32), (70, 124, 176), (80, 134, 84), (134, 102, 52))
_HAIR_STYLES = ("short", "long", "curly", "bob", "bun", "quiff", "buzz")   # and "bald", only when stated
_SHIRT_STYLES = ("tee", "collar", "vneck", "hoodie")


@dataclass(frozen=True, slots=True)
class _Look:
    """Every random choice of one speaker's look, drawn once (in a fixed order) from the look hash."""
    skin: RGB
    hair: RGB
    shirt: RGB
    iris: RGB
    style: str
    shirt_style: str
    n_exp: float
    taper: float
    aspect: float
    glasses: bool
    phones: bool
    lip: RGB
    dark: RGB
    fh: float          # face height (forehead to chin), SS x px
    fw: float          # face width, SS x px
    cx: float          # face centre, SS x px
    cy: float
    mw: float          # mouth width, SS x px
    part: float        # hair parting offset, face widths
    glass_rgb: RGB | None
    gender: str | None = None        # "male" / "female" presentation (None: neither stated nor given)
    old: bool = False                # forehead lines and grey brows
    beard: RGB | None = None         # beard colour (None: no beard)
    moustache: RGB | None = None     # moustache colour (None: none)

    def F(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """A box in face units (fractions of face width / height from the face centre) -> SS x px."""
        return (self.cx + x0 * self.fw, self.cy + y0 * self.fh, self.cx + x1 * self.fw, self.cy + y1 * self.fh)

    def P(self, x: float, y: float) -> tuple[float, float]:
        """A point in face units -> SS x px."""
        return (self.cx + x * self.fw, self.cy + y * self.fh)

    @property
    def ol(self) -> int:
        return max(1, round(0.012 * self.fh))

    @property
    def eyes(self) -> tuple[float, float, float]:
        """(eye line y, eye x offset from the face centre, eye radius), SS x px."""
        return self.cy - 0.04 * self.fh, 0.205 * self.fw, 0.095 * self.fw

    @property
    def mouth_y(self) -> float:
        return self.cy + 0.255 * self.fh


_FEMALE_STYLES, _MALE_STYLES = ("long", "bob", "bun", "curly"), ("short", "quiff", "buzz", "curly")
_SKIN_OF = {"light": 0, "medium": 2, "tan": 3, "brown": 4, "dark": 5}
_GREYS: tuple[RGB, ...] = ((188, 188, 194), (226, 226, 230), (150, 150, 156))
_GARMENT_STYLE = {"toga": "toga", "robe": "robe", "suit": "suit", "hoodie": "hoodie", "tee": "tee",
                  "collar": "collar", "vneck": "vneck"}


def _look(W: int, H: int, name: str, speaker_index: int, seed: int, traits: dict | None = None) -> _Look:
    rng = random.Random(_hash("look", name, speaker_index, seed))
    pal, si = _hash("palette", seed), int(speaker_index)
    skin = _SKINS[(rng.randrange(len(_SKINS)) + 2 * si) % len(_SKINS)]
    hair = _HAIRS[(pal % 6 + 2 * si + (si // 3)) % 6]
    shirt = _SHIRTS[((pal >> 8) % 9 + 3 * si + (si // 3)) % 9]
    iris = _IRIS[rng.randrange(len(_IRIS))]
    style = _HAIR_STYLES[(rng.randrange(len(_HAIR_STYLES)) + si) % len(_HAIR_STYLES)]
    shirt_style = _SHIRT_STYLES[rng.randrange(len(_SHIRT_STYLES))]
    n_exp, taper, aspect = rng.uniform(2.0, 2.7), rng.uniform(0.1, 0.3), rng.uniform(0.76, 0.84)
    glasses, phones = rng.random() < 0.4, rng.random() < 0.3
    t = _traits(traits)
    gender, old = t.get("gender"), t.get("age") == "old"
    pick = random.Random(_hash("traits", name, speaker_index, seed))   # a separate stream: the draws above stay
    if gender in ("male", "female"):
        fit = _MALE_STYLES if gender == "male" else _FEMALE_STYLES
        if style not in fit:
            style = fit[pick.randrange(len(fit))]
    if style == "buzz" and ("hair" in t or old):   # a stated (or grey) colour shows: not a stubble of it
        style = "short"
    if t.get("hair_style") in _HAIR_STYLES + ("bald",):
        style = t["hair_style"]
    if "skin" in t:
        skin = _SKINS[_SKIN_OF[t["skin"]]]
    hair = t["hair"] if "hair" in t else _GREYS[pick.randrange(len(_GREYS))] if old else hair
    shirt = t.get("clothing", shirt)
    shirt_style = _GARMENT_STYLE.get(t.get("garment") or "", shirt_style)
    if "glasses" in t:
        glasses = bool(t["glasses"])
    beard = t.get("beard_colour", hair) if t.get("beard") else None
    moustache = beard if beard is not None and t.get("moustache") is not False else (
        t.get("beard_colour", hair) if t.get("moustache") else None)
    lip = mix(shade(skin, 0.82), (200, 84, 96), 0.62 if gender == "female" else 0.45)
    dark = shade(skin, 0.7)
    k = SS
    fh = 0.40 * min(H, W * 1.25) * k * rng.uniform(0.95, 1.05)
    fw = fh * aspect
    cx, cy = W * k * (0.5 + rng.uniform(-0.025, 0.025)), H * k * 0.47
    mw = 0.4 * fw * rng.uniform(0.92, 1.06)
    part = {"short": 0.12, "long": 0.0, "quiff": -0.08}.get(style, 0.05) * (1 if rng.random() < 0.5 else -1)
    gc = ((30, 30, 36), (120, 72, 40), (40, 60, 120), (170, 40, 50))[rng.randrange(4)] if glasses else None
    if glasses and gc is None:   # stated glasses on a speaker whose hash drew none
        gc = (30, 30, 36)
    if gc is not None and sum(abs(a - b) for a, b in zip(gc, skin)) < 150:   # frames that show on this skin
        gc = max(((30, 30, 36), (40, 60, 120), (170, 40, 50), (206, 206, 216)),
                 key=lambda c: sum(abs(a - b) for a, b in zip(c, skin)))
    return _Look(skin=skin, hair=hair, shirt=shirt, iris=iris, style=style, shirt_style=shirt_style, n_exp=n_exp,
                 taper=taper, aspect=aspect, glasses=glasses, phones=phones, lip=lip, dark=dark, fh=fh, fw=fw,
                 cx=cx, cy=cy, mw=mw, part=part, glass_rgb=gc, gender=gender, old=old, beard=beard,
                 moustache=moustache)


def _traits(traits: dict | None) -> dict:
    """The portrait task's ``look`` (traits of ``streamwise.workflow.cast.read_look``) with colour names resolved
    to RGB; unknown keys and values are ignored (an older or foreign client's look never breaks a portrait)."""
    out: dict = {}
    for key, value in (traits or {}).items():
        if key in ("hair", "clothing", "beard_colour"):
            rgb = COLOURS.get(str(value).casefold()) if isinstance(value, str) else None
            if rgb is not None:
                out[key] = rgb
        elif key == "skin" and value in _SKIN_OF or key in ("gender", "age", "hair_style", "garment") \
                and isinstance(value, str) or key in ("beard", "moustache", "glasses") and isinstance(value, bool):
            out[key] = value
    return out
