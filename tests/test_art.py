"""Tests for the CPU rung's procedural art (stages.art.studio, stages.art.portrait, stages.art.compositing) and talking-head
animator (stages.art.head, stages.art.motion, stages.art.subtitles)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from streamwise.stages.art.compositing import compose_layers
from streamwise.stages.art.drawing import font
from streamwise.stages.art.head import HeadAnimator
from streamwise.stages.art.motion import blink_states, head_motion, nod_drive, nod_span
from streamwise.stages.art.portrait import FaceLayout, render_person_layers, render_portrait
from streamwise.stages.art.studio import DESK_TOP, render_studio
from streamwise.stages.art.subtitles import wrap_text

W, H = 640, 400


@pytest.fixture(scope="module")
def studio():
    return render_studio(W, H, title="The Deep Dive", description="Science, weekly", seed=3)


@pytest.fixture(scope="module")
def portraits(studio):
    return [render_portrait(studio, name=n, speaker_index=i) for i, n in enumerate(["Alice", "Bob", "Chen"])]


@pytest.fixture(scope="module")
def animator(portraits):
    img, layout = portraits[0]
    return HeadAnimator(np.asarray(img), layout)


@pytest.fixture(scope="module")
def layers(studio):
    return [render_person_layers(studio, name=n, speaker_index=i) for i, n in enumerate(["Alice", "Bob", "Chen"])]


def _mover(lay, **kw) -> HeadAnimator:
    return HeadAnimator(np.asarray(lay.image), lay.layout, person=np.asarray(lay.person),
                        backdrop=np.asarray(lay.backdrop), **kw)


@pytest.fixture(scope="module")
def movers(layers):
    return [_mover(lay) for lay in layers]


def speech_envelope(seconds: float = 10.0, fps: float = 25.0, seed: int = 0,
                    pauses: tuple[tuple[float, float], ...] = ((3.0, 4.0), (7.0, 8.0))) -> np.ndarray:
    """A speech-like mouth envelope: words of 1-3 syllables (0.14-0.28 s bumps, peaks 0.45-1), short gaps, silent
    ``pauses`` (s), smoothed with the fast attack / slow release of ``speech.energy_envelope``. Its statistics
    match piper speech run through energy_envelope (mean ~0.3-0.35, ~20 % of frames near 0 with the pauses)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    target, pos = np.zeros(n), 0.05
    while pos < seconds:
        for _ in range(int(rng.integers(1, 4))):
            dur, peak = rng.uniform(0.14, 0.28), rng.uniform(0.45, 1.0)
            inside = (t >= pos) & (t < pos + dur)
            target[inside] = np.maximum(target[inside], peak * np.sin(np.pi * (t[inside] - pos) / dur))
            pos += dur
        pos += rng.uniform(0.0, 0.15)
    for a, b in pauses:
        target[(t >= a) & (t < b)] = 0.0
    env, level = np.empty(n, np.float32), 0.0
    for i, x in enumerate(target):
        level += (0.85 if x > level else 0.45) * (x - level)
        env[i] = level
    return env


def _gray_y(frames: np.ndarray) -> np.ndarray:
    """Luma as a viewer's decoder reports it for our encodes (BT.601 limited range: 219/255 of full-range gray)."""
    return frames.astype(np.float32) @ (np.array([0.299, 0.587, 0.114], np.float32) * (219.0 / 255.0))


def _box(center, rx, ry, shape):
    x, y = center
    return slice(max(0, y - ry), min(shape[0], y + ry + 1)), slice(max(0, x - rx), min(shape[1], x + rx + 1))


def test_studio_deterministic_sized_and_not_flat(studio):
    again = render_studio(W, H, title="The Deep Dive", description="Science, weekly", seed=3)
    assert studio.mode == "RGB" and studio.size == (W, H)
    assert studio.tobytes() == again.tobytes()
    arr = np.asarray(studio, np.float32)
    assert arr.std() > 20
    other = np.asarray(render_studio(W, H, title="Other Show", seed=4), np.float32)
    assert np.abs(arr - other).mean() > 3


def test_portraits_distinct_and_deterministic(studio, portraits):
    arrs = [np.asarray(p[0], np.float32) for p in portraits]
    for img, _ in portraits:
        assert img.size == (W, H) and img.mode == "RGB"
    # face + shirt region around the frame centre
    region = (slice(int(0.25 * H), int(0.85 * H)), slice(int(0.3 * W), int(0.7 * W)))
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(arrs[i][region] - arrs[j][region]).mean() > 12, (i, j)
    again, layout = render_portrait(studio, name="Alice", speaker_index=0)
    assert again.tobytes() == portraits[0][0].tobytes() and layout == portraits[0][1]


def test_layout_inside_frame_and_mouth_colours(portraits):
    for img, lay in portraits:
        arr = np.asarray(img).astype(np.int32)
        (mx, my), (e0, e1) = lay.mouth_center, lay.eye_centers
        for x, y in ((mx, my), e0, e1):
            assert 0 <= x < W and 0 <= y < H
        assert e0[0] < mx < e1[0] and e0[1] < my
        assert 0.08 * H <= my - e0[1] <= 0.25 * H   # a close-up: eyes-to-mouth is a real distance
        assert lay.mouth_width > 10 and lay.mouth_max_open > 4 and lay.eye_radius > 3
        ys, xs = _box(lay.mouth_center, lay.mouth_width // 2 + 4, lay.mouth_width // 3, arr.shape)
        px = arr[ys, xs].reshape(-1, 3)
        near = lambda c: (np.abs(px - np.asarray(c)).sum(axis=1) < 30).mean()  # noqa: E731
        assert near(lay.skin_rgb) > 0.2 and near(lay.lip_rgb) > 0.05
        d = lay.to_dict()
        assert FaceLayout.from_dict(json.loads(json.dumps(d))) == lay


def test_frames_shape_and_mouth_changes(animator, portraits):
    img, lay = portraits[0]
    portrait = np.asarray(img)
    mo = np.array([0.0, 1.0, 0.5, 0.0], np.float32)
    fr = animator.render(mo, blink_seed=1, start_frame=0)
    assert fr.shape == (4, H, W, 3) and fr.dtype == np.uint8
    ys, xs = _box(lay.mouth_center, lay.mouth_width, lay.mouth_max_open + 4, fr.shape[1:])
    diff = np.abs(fr[1, ys, xs].astype(np.int32) - fr[0, ys, xs].astype(np.int32)).sum(axis=2)
    assert (diff > 40).sum() > 0.1 * lay.mouth_width * lay.mouth_max_open
    assert np.array_equal(fr[0], portrait) and np.array_equal(fr[3], portrait)   # closed + no blink = portrait
    far = np.ones((H, W), bool)
    far[ys, xs] = False
    for e in lay.eye_centers:
        far[_box(e, 2 * lay.eye_radius, 2 * lay.eye_radius, fr.shape[1:])] = False
    assert np.array_equal(fr[1][far], portrait[far])


def test_blinks_within_10s_change_eyes(animator, portraits):
    _, lay = portraits[0]
    n = 250
    states = blink_states(n, start_frame=0, fps=25.0, seed=7)
    closed = np.flatnonzero(states == 2)
    assert closed.size >= 2 and (states > 0).sum() >= 3
    fr = animator.render(np.zeros(n, np.float32), blink_seed=7, fps=25.0)
    for e in lay.eye_centers:
        ys, xs = _box(e, lay.eye_radius, lay.eye_radius, fr.shape[1:])
        assert np.abs(fr[closed[0], ys, xs].astype(int) - fr[0, ys, xs].astype(int)).mean() > 10
    open_frames = np.flatnonzero(states == 0)
    assert np.array_equal(fr[open_frames[0]], fr[open_frames[-1]])
    # blink gaps ~2.5-5 s and consistent across a split clip
    starts = np.flatnonzero(np.diff((blink_states(2500, seed=7) > 0).astype(int)) == 1)
    gaps = np.diff(starts) / 25.0
    assert gaps.min() >= 2.4 and gaps.max() <= 5.1
    a = blink_states(100, start_frame=0, seed=7)
    b = blink_states(150, start_frame=100, seed=7)
    assert np.array_equal(np.concatenate([a, b]), blink_states(250, seed=7))


def test_subtitle_band(animator, portraits):
    img, _ = portraits[0]
    portrait = np.asarray(img).astype(np.int32)
    text = "Welcome back to the Deep Dive. Today we talk about black holes, how they evaporate, and why it matters." * 3
    fr = animator.render(np.zeros(60, np.float32), subtitle=text, speaker="Alice", blink_seed=2, start_frame=5000)
    band = (slice(int(0.8 * H), H - 2), slice(int(0.25 * W), int(0.75 * W)))
    assert (np.abs(fr[0][band].astype(np.int32) - portrait[band]).sum(axis=2) > 30).mean() > 0.3
    # long text is paged: the first and last frame show different text
    assert not np.array_equal(fr[0][band], fr[-1][band])
    top = slice(0, int(0.3 * H))
    assert np.array_equal(fr[0][top], np.asarray(img)[top])


def test_wrap_text_fits():
    fnt = font(20)
    lines = wrap_text("a quick brown fox jumps over the lazy dog " * 5 + "x" * 80, fnt, 200)
    assert all(fnt.getlength(line) <= 200 for line in lines) and len(lines) > 3


@pytest.mark.parametrize("size", [(320, 200), (1280, 800)])
def test_other_sizes(size):
    w, h = size
    st = render_studio(w, h, title="Size Check")
    img, lay = render_portrait(st, name="Kai", speaker_index=1)
    assert img.size == (w, h)
    anim = HeadAnimator(np.asarray(img), lay)
    fr = anim.render(np.linspace(0, 1, 12, dtype=np.float32), subtitle="hello there", speaker="Kai")
    assert fr.shape == (12, h, w, 3) and fr.dtype == np.uint8
    assert not np.array_equal(fr[0], fr[-1])
    assert anim.render(np.zeros(0, np.float32)).shape == (0, h, w, 3)


# ----------------------------------------------------------------------------------------------- head motion

def test_person_layers(studio, layers, portraits):
    st = np.asarray(studio)
    for lay, (img, layout) in zip(layers, portraits):
        assert lay.image.tobytes() == img.tobytes() and lay.layout == layout
        assert lay.person.mode == "RGBA" and lay.person.size == (2 * W, 2 * H)
        assert lay.backdrop.mode == "RGBA" and lay.backdrop.size == (W, H)
        person, backdrop = np.asarray(lay.person), np.asarray(lay.backdrop)
        alpha, vis = person[..., 3], backdrop[..., 3]
        assert set(np.unique(alpha).tolist()) <= {0, 255}          # binary at 2x: no fringe colours to bleed
        for x, y in (layout.mouth_center, *layout.eye_centers, (layout.mouth_center[0], int(0.8 * H))):
            assert alpha[2 * y, 2 * x] == 255                       # face, eyes, shirt
        assert alpha[:, :2 * W // 8].max() == 0 and alpha[:2 * H // 10].max() == 0   # wall beside and above
        assert (vis[int(DESK_TOP * H):] == 0).all() and (vis[:H // 2] == 255).all()   # behind the desk / open wall
        assert 0.002 < (vis[H // 2:int(DESK_TOP * H)] < 255).mean() < 0.2                # the mic and name plate
        open_ = vis == 255                                          # the backdrop is the bare studio there
        assert np.array_equal(backdrop[..., :3][open_], st[open_])
        assert np.array_equal(compose_layers(backdrop, person), np.asarray(img))


def test_moving_head_changes_whole_frame(movers, layers):
    """The viewer check: >= 80 % of frame pairs 5 frames apart differ by > 0.3 mean abs luma over the whole frame,
    over 10 s of speech with two 1 s pauses; the static animator does not get there."""
    text = "Welcome back to the Deep Dive. Today we talk about black holes, how they evaporate, and why it matters."
    for i, (mover, lay) in enumerate(zip(movers, layers)):
        env = speech_envelope(seed=i)
        for start in (0, 1000):
            frames = mover.render(env, subtitle=text, speaker="Alice", blink_seed=11 * i + 1, start_frame=start)
            g = _gray_y(frames[4::5])
            moving = (np.abs(np.diff(g, axis=0)).mean(axis=(1, 2)) > 0.3).mean()
            assert moving >= 0.8, (i, start, moving)
        static = HeadAnimator(np.asarray(lay.image), lay.layout).render(env, subtitle=text, blink_seed=1)
        g = _gray_y(static[4::5])
        assert (np.abs(np.diff(g, axis=0)).mean(axis=(1, 2)) > 0.3).mean() < 0.5


def test_moving_head_is_smooth_and_bounded():
    env = speech_envelope(seconds=20.0, seed=3)
    m = head_motion(len(env), start_frame=0, fps=25.0, seed=5, drive=nod_drive(env, fps=25.0))
    assert np.abs(np.diff(m, axis=0)).max() < 0.8            # px per frame: no jumps
    assert 2.0 < np.ptp(m[:, 0]) / 2 < 4.6 and np.ptp(m[:, 1]) < 6.0
    assert m[:, 1][env > 0.6].mean() > m[:, 1][env < 0.05].mean() + 0.5   # nods down with the speech
    sway = np.abs(np.fft.rfft(m[:, 0] - m[:, 0].mean()))
    hz = np.fft.rfftfreq(len(env), 1 / 25.0)[int(np.argmax(sway))]
    assert 0.1 <= hz <= 0.4


def test_moving_head_continuous_across_clip_split(movers):
    mover = movers[0]
    env = speech_envelope(seconds=4.0, seed=5, pauses=())
    ahead, behind = nod_span(25.0)
    whole = mover.render(env, blink_seed=9, start_frame=300, end_frame=420)
    first = mover.render(env[:50], blink_seed=9, start_frame=300, end_frame=420, context=(None, env[50:50 + ahead]))
    second = mover.render(env[50:], blink_seed=9, start_frame=350, end_frame=420, context=(env[50 - behind:50], None))
    assert np.array_equal(np.concatenate([first, second]), whole)
    # without context the nod sees silence beyond the clip: still no jump at the split
    a = head_motion(50, start_frame=300, seed=9, drive=nod_drive(env[:50]), end_frame=420)
    b = head_motion(50, start_frame=350, seed=9, drive=nod_drive(env[50:]), end_frame=420)
    assert np.abs(b[0] - a[-1]).max() < 1.5


def test_moving_head_rests_at_piece_ends(movers, layers):
    lay = layers[1]
    env = np.zeros(40, np.float32)
    frames = movers[1].render(env, blink_seed=4, start_frame=0, end_frame=200)
    assert np.array_equal(frames[0], np.asarray(lay.image))          # frame 0: at rest = the portrait
    assert not np.array_equal(frames[-1], frames[0])
    m = head_motion(3, start_frame=198, seed=4, end_frame=200)
    assert np.abs(m[-1]).max() < 0.1 and np.abs(head_motion(1, start_frame=200, seed=4, end_frame=200)).max() == 0


def test_moving_frames_match_reference_composite(movers, layers):
    """The fast per-frame path equals the plain layer composite at the frame's (quantised) offset."""
    lay, mover = layers[2], movers[2]
    env = speech_envelope(seconds=4.0, seed=8)
    frames = mover.render(env, blink_seed=2, start_frame=500)
    closed = (np.rint(env * (mover.levels - 1)) == 0) & (blink_states(len(env), start_frame=500, seed=2) == 0)
    shift = np.rint(head_motion(len(env), start_frame=500, seed=2, drive=nod_drive(env)) * 2).astype(int)
    idx = np.flatnonzero(closed)
    assert idx.size >= 5 and len({tuple(x) for x in shift[idx]}) >= 3
    for i in idx[:: max(1, idx.size // 6)]:
        ref = compose_layers(np.asarray(lay.backdrop), np.asarray(lay.person), tuple(shift[i]))
        assert np.array_equal(frames[i], ref), i


def test_subtitles_stay_put_while_head_moves(movers, layers):
    lay, mover = layers[0], movers[0]
    text = "Black holes evaporate, slowly."
    env = speech_envelope(seconds=3.0, seed=1, pauses=())
    frames = mover.render(env, subtitle=text, speaker="Alice", blink_seed=6, start_frame=100)
    still = _mover(lay, motion=0.0).render(env, subtitle=text, speaker="Alice", blink_seed=6, start_frame=100)
    plain = _mover(lay, motion=0.0).render(env, blink_seed=6, start_frame=100)
    band = (np.abs(still[0].astype(int) - plain[0]).sum(axis=2) > 0)
    ys, xs = np.nonzero(band)
    assert ys.min() > 0.75 * H and 0.1 * W < xs.min() < xs.max() < 0.9 * W   # the band is at the bottom
    text_px = band & (still[0] == 255).all(axis=2)                  # white glyph cores: fully opaque
    assert text_px.sum() > 100
    assert (frames[:, text_px] == 255).all()
    rows = slice(ys.min(), ys.max() + 1)
    assert not np.array_equal(frames[0, :rows.start], frames[-1, :rows.start])   # while the head does move
    diff = np.abs(frames[:, rows].astype(np.int16) - frames[0, rows]).max(axis=0).max(axis=-1)
    assert (diff[band[rows]] > 0).mean() < 0.5 and diff[band[rows]].max() <= 64   # the band only lets 35 % through


@pytest.mark.parametrize("size", [(320, 200), (1280, 800)])
def test_moving_head_other_sizes(size):
    w, h = size
    lay = render_person_layers(render_studio(w, h, title="Size Check"), name="Kai", speaker_index=1)
    assert lay.person.size == (2 * w, 2 * h) and lay.backdrop.size == (w, h)
    anim = _mover(lay)
    assert anim.moving and not HeadAnimator(np.asarray(lay.image), lay.layout).moving
    fr = anim.render(speech_envelope(seconds=2.0, seed=2), subtitle="hello there", speaker="Kai", start_frame=50)
    assert fr.shape == (50, h, w, 3) and fr.dtype == np.uint8
    assert np.abs(fr[0].astype(int) - fr[-1]).mean() > 0.1
    assert anim.render(np.zeros(0, np.float32)).shape == (0, h, w, 3)
