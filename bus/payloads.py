"""Typed stage payloads: each stage's task inputs and event outputs, the blob reference, the
cache value and the screenplay checkpoint, beside the wire protocol (issue 10 item 4).

A :class:`~streamwise.bus.messages.Task` carries ``inputs`` and an
:class:`~streamwise.bus.messages.Event` carries ``outputs`` as plain MessagePack maps, so that
a stage can grow a field without a protocol change. Their shapes are fixed here, one msgspec
``Struct`` per (stage, direction), and checked where they cross the bus: the worker checks a
task's inputs before its adapter runs (:func:`check_inputs`: an invalid one is refused, not
retried), the scheduler checks an event's outputs before its plan uses them
(:func:`check_outputs`). Fields not listed are allowed and ignored (a newer stage's extras);
listed fields must have their type. Units: samples and frames are counts, rates in Hz or fps,
times in seconds, sizes in pixels; ``Name`` fields are object-store names.

``PAYLOAD_VERSION`` is the version of these shapes; the task's own ``v`` versions the envelope.
"""

from __future__ import annotations

from typing import Any

import msgspec

from .codec import MessageError, _reason
from .messages import Name

PAYLOAD_VERSION = 1

_S = dict(kw_only=True, omit_defaults=True)


# ------------------------------------------------------------------------- screenplay
class ScriptInputs(msgspec.Struct, **_S):
    """Screenplay from a script: its text, or ``script_ref`` (the tenant's upload store)."""

    script: str | None = None
    script_ref: Name | None = None
    format: str | None = None
    name: str | None = None


class TopicInputs(msgspec.Struct, **_S):
    """Screenplay by the LLM: a topic or a document; ``resume``: the lines already written."""

    topic: str | None = None
    document: str | None = None
    name: str | None = None
    resume: dict[str, Any] | None = None


class ScreenplayLine(msgspec.Struct, **_S):
    """One line: the speaker's index in ``speakers`` and its speakable pieces (texts)."""

    speaker: int
    pieces: list[str]
    index: int | None = None


class ScreenplayOutputs(msgspec.Struct, **_S):
    """Title, studio description, speakers (names), lines, and an optional voice per speaker.
    Also the screenplay checkpoint's shape (with ``complete``)."""

    lines: list[ScreenplayLine] = []
    speakers: list[str] = []
    title: str | None = None
    studio: str | None = None
    voices: list[str | None] | None = None
    complete: bool = False


# ------------------------------------------------------------------------- image
class ImageInputs(msgspec.Struct, **_S):
    """``kind`` studio (``title``, ``description``, ``width`` x ``height``) or portrait (``name``,
    ``speaker_index``, ``studio``: the studio image's name)."""

    kind: str
    title: str | None = None
    description: str | None = None
    width: int | None = None
    height: int | None = None
    name: str | None = None
    speaker_index: int | None = None
    studio: Name | None = None


class ImageOutputs(msgspec.Struct, **_S):
    """The image (PNG name); a portrait's face ``layout`` and its layers (``person``, ``backdrop``)."""

    image: Name
    layout: dict[str, Any] | None = None
    person: Name | None = None
    backdrop: Name | None = None


# ------------------------------------------------------------------------- tts
class SpeechInputs(msgspec.Struct, **_S):
    """One piece of a line: text, speaker index, show fps, clip lengths (s), the pause after (s)
    and an optional voice name."""

    text: str
    speaker_index: int
    fps: float
    max_clip_s: float
    first_clip_s: float | None = None
    pause_after_s: float = 0.0
    voice: str | None = None


class SpeechOutputs(msgspec.Struct, **_S):
    """The PCM (int16, name), its length in samples, its rate (Hz) and the clip cuts
    ``[[start, end), ...]`` in samples."""

    audio: Name
    samples: int
    sample_rate: int
    clips: list[tuple[int, int]]
    voice: str | None = None
    voice_model: str | None = None
    engine: str | None = None


# ------------------------------------------------------------------------- video
class ClipInputs(msgspec.Struct, **_S):
    """A talking-head clip: the piece's PCM and the sample range it covers, the portrait (name,
    face layout, layers), the show's fps and size, the subtitle and the frames held per drawn
    frame (``hold``, a cheaper CPU rung)."""

    audio: Name
    sample_from: int
    sample_to: int
    sample_rate: int
    fps: float
    portrait: Name
    layout: dict[str, Any]
    width: int | None = None
    height: int | None = None
    person: Name | None = None
    backdrop: Name | None = None
    subtitle: str = ""
    speaker: str = ""
    start_frame: int = 0
    blink_seed: int = 0
    hold: int = 1
    sketch: Name | None = None          # the FramePack motion video this clip follows (the GPU chain)
    upscale_after: bool = False         # an ``upscale`` rung's Real-ESRGAN pass runs in a node of its own


class ClipOutputs(msgspec.Struct, **_S):
    """The clip (name), its frames at the show's fps, and ``hold`` for a rung that draws fewer."""

    clip: Name
    frames: int | None = None
    hold: int = 1


# ------------------------------------------------------------------------- the GPU chain
class SketchInputs(ClipInputs, **_S):
    """FramePack's sketch of a clip (stage ``sketch``): the clip's inputs, and ``decode`` False
    when its VAE decode runs in a node of its own (stage ``vae``)."""

    decode: bool = True


class SketchOutputs(msgspec.Struct, **_S):
    """The sketch's frames (at its own fps), its video (``clip``, name) when decoded here, or its
    ``latents`` (name) for the VAE node; an emulated sketch names neither."""

    frames: int
    clip: Name | None = None
    latents: Name | None = None


class VaeInputs(msgspec.Struct, **_S):
    """FramePack's VAE decode (stage ``vae``): the sketch's ``latents`` (name; ``None`` from an
    emulated sketch), its frames, the show's fps."""

    frames: int
    fps: float
    latents: Name | None = None


class VaeOutputs(msgspec.Struct, **_S):
    """The decoded sketch video (``clip``, name; ``None`` when emulated) and its frames."""

    frames: int
    clip: Name | None = None


class UpscaleInputs(msgspec.Struct, **_S):
    """Real-ESRGAN x``factor`` (stage ``upscale``) of the talking head's ``clip`` (name, ``frames``
    frames at the show's ``fps``) to the stream's ``width`` x ``height`` (pixels)."""

    clip: Name
    width: int
    height: int
    frames: int = 0
    fps: float | None = None
    factor: int = 2


class UpscaleOutputs(msgspec.Struct, **_S):
    """The upscaled clip (name) and its frames."""

    clip: Name
    frames: int | None = None


# ------------------------------------------------------------------------- mux
class SegmentInputs(msgspec.Struct, **_S):
    """Segment ``index`` at ``start_s`` for ``duration_s``: ``video`` parts ``[clip, first frame,
    end frame(, hold)]``, ``audio`` parts ``[pcm, first sample, end sample]``, subtitle ``cues``."""

    index: int
    start_s: float
    duration_s: float
    video: list[list[Any]]
    audio: list[list[Any]]
    fps: float
    sample_rate: int
    width: int
    height: int
    preroll_samples: int = 0
    cues: list[dict[str, Any]] = []
    final: bool = False


class SegmentOutputs(msgspec.Struct, **_S):
    """The published segment's size (bytes) and index."""

    bytes: int
    index: int


INPUTS: dict[str, tuple[type, ...]] = {
    "screenplay": (ScriptInputs, TopicInputs), "image": (ImageInputs,), "tts": (SpeechInputs,),
    "video": (ClipInputs,), "mux": (SegmentInputs,), "sketch": (SketchInputs,), "vae": (VaeInputs,),
    "upscale": (UpscaleInputs,),
}
OUTPUTS: dict[str, type] = {
    "screenplay": ScreenplayOutputs, "image": ImageOutputs, "tts": SpeechOutputs, "video": ClipOutputs,
    "mux": SegmentOutputs, "sketch": SketchOutputs, "vae": VaeOutputs, "upscale": UpscaleOutputs,
}


class BlobRef(msgspec.Struct, **_S):
    """Outputs too large for one message, stored in the object store: ``{"$ref": name}``."""

    ref: Name = msgspec.field(name="$ref")


def _check(kind: type, payload: dict[str, Any], what: str) -> None:
    try:
        msgspec.convert(payload, kind)
    except msgspec.ValidationError as exc:
        raise MessageError(f"{what}: {_reason(exc)}") from None


def check_inputs(stage: str, inputs: dict[str, Any]) -> None:
    """Check a task's ``inputs`` against its stage's shape (a screenplay's: the script's or the
    topic's); a stage without a shape here passes.

    Raises:
        MessageError: a listed field missing or of the wrong type (one line naming it).
    """
    kinds = INPUTS.get(stage)
    if not kinds:
        return
    if stage == "screenplay":
        kinds = (TopicInputs,) if inputs.get("topic") or inputs.get("document") else (ScriptInputs,)
    _check(kinds[0], inputs, f"{stage} task inputs")


def check_outputs(stage: str, outputs: dict[str, Any], *, partial: bool = False) -> None:
    """Check an event's ``outputs`` against its stage's shape (a ``$ref`` stands for outputs in
    the object store and is checked as :class:`BlobRef`). Emulated and GPU adapters may add
    fields.

    Raises:
        MessageError: a listed field missing or of the wrong type (one line naming it).
    """
    if "$ref" in outputs:
        _check(BlobRef, outputs, f"{stage} event outputs")
        return
    kind = OUTPUTS.get(stage)
    if kind is not None:
        _check(kind, outputs, f"{stage} {'partial ' if partial else ''}event outputs")
