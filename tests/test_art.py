"""Tests for the CPU rung's procedural art (stages.art) and talking-head animator (stages.head)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from streamwise.stages.art import FaceLayout, font, render_portrait, render_studio
from streamwise.stages.head import HeadAnimator, blink_states, wrap_text

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
