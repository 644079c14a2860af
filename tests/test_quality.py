"""Tests for streamwise.core.quality (ladders, rung policy) and streamwise.core.constraints (model rules).

Runtimes come from a simple model (proportional to width * height * steps); nothing is timed.
"""

from __future__ import annotations

import copy
import math

import pytest

from streamwise.core.constraints import (
    ConfigError,
    ModelConstraints,
    clip_plan,
    frames_for,
    load_constraints,
    read_config,
    snap_size,
    validate_request,
)
from streamwise.core.quality import (
    Ladder,
    QualityState,
    Rung,
    load_ladders,
    next_rung,
    scale_plan,
)


@pytest.fixture(scope="module")
def ladders() -> dict[str, Ladder]:
    return load_ladders()


@pytest.fixture(scope="module")
def models() -> dict[str, ModelConstraints]:
    return load_constraints()


def runtime(rung: Rung) -> float:
    """Seconds: 1 s per 1280x800x20 of work; the CPU rung costs 0.5 s."""
    if rung.steps is None:
        return 0.5
    return rung.width * rung.height * rung.steps / (1280 * 800 * 20)


# --------------------------------------------------------------------------- loading


def test_ladders_load_with_the_cpu_rung_last(ladders, models):
    ft = ladders["fantasytalking"]
    assert [r.name for r in ft.rungs] == ["high", "medium", "low", "static", "still"]
    still = ft.rungs[-1]                   # the cheaper CPU rung: quality gives way before playback
    assert (still.model, still.draw_fps, still.cpu_cost) == ("cpu-head", 3.0, 0.25) and ft.is_cpu(still)
    assert still.hold_frames(25.0) == 8 and still.hold_frames(60.0) == 20 and ft.rungs[3].hold_frames(25.0) == 1
    assert ft.is_cpu(ft.rungs[3]) and not ft.is_cpu(ft.rungs[2])
    assert (ft.top.width, ft.top.height, ft.top.steps) == (1280, 800, 20)
    assert ft.output == (1280, 800) and ft.upscaler == "realesrgan-x2"
    assert ft.model_of(ft.static) == "cpu-head"
    assert [r.name for r in ladders["cpu-head"].rungs] == ["static"]
    for ladder in ladders.values():
        assert models[ladder.model_of(ladder.static)].hardware == "cpu"


def test_models_carry_checkpoints_and_constraints(models):
    ft = models["fantasytalking"]
    assert ft.checkpoint == "Wan-AI/Wan2.1-I2V-14B-720P"
    assert (ft.max_clip_s, ft.fps, ft.frame_rule) == (3.5, 23.0, "1+4n")
    assert ft.gpu_counts == (1, 2, 4, 8) and (16, 10) in ft.aspect_ratios
    assert models["flux"].checkpoint == "black-forest-labs/FLUX.1-dev"
    assert models["kokoro"].checkpoint == "hexgrad/Kokoro-82M"
    for cpu in ("script-parser", "piper", "cpu-art", "cpu-head", "pyav-fmp4"):
        assert models[cpu].hardware == "cpu" and models[cpu].gpu_counts == ()


def test_scale_plan_keeps_one_resolution_per_stream(ladders):
    ft = ladders["fantasytalking"]
    assert [scale_plan(r, ft) for r in ft.rungs] == ["none", "upscale", "scale", "scale", "scale"]
    assert scale_plan(ladders["cpu-head"].static, ladders["cpu-head"]) == "none"


# --------------------------------------------------------------------------- hysteresis


def test_hysteresis_steps_down_at_once_and_climbs_one_rung_per_k_shots(ladders):
    ft = ladders["fantasytalking"]
    low, top = ft.rungs[2], ft.top
    state, seen = QualityState(), []
    for feasible in [low, low, low] + [top] * 6:
        rung, state = next_rung(state, ft, feasible, climb_after=2)
        seen.append(rung.name)
    assert seen == ["low", "low", "low", "low", "medium", "medium", "high", "high", "high"]
    assert state == QualityState(0, 0)


def test_hysteresis_restarts_the_count_when_slack_disappears(ladders):
    ft = ladders["fantasytalking"]
    medium, top = ft.rungs[1], ft.top
    state = QualityState(index=1)
    seen = []
    for feasible in [top, medium, top, top]:
        rung, state = next_rung(state, ft, feasible, climb_after=2)
        seen.append(rung.name)
    assert seen == ["medium", "medium", "medium", "high"]


def test_hysteresis_uses_the_ladder_default_and_a_tight_shot_drops_straight_to_static(ladders):
    ft = ladders["fantasytalking"]
    assert ft.climb_after == 2
    static = ft.rungs[ft.index("static")]
    rung, state = next_rung(QualityState(), ft, static)
    assert rung.name == "static" and state.index == 3
    rung, state = next_rung(state, ft, ft.top)
    assert rung.name == "static" and state.on_time == 1
    rung, state = next_rung(state, ft, ft.top)
    assert rung.name == "low"


def test_next_rung_rejects_a_rung_of_another_ladder(ladders):
    with pytest.raises(ValueError, match="no rung"):
        next_rung(QualityState(), ladders["cpu-head"], ladders["fantasytalking"].top)


# --------------------------------------------------------------------------- constraints


def test_frames_for_gives_1_plus_4n_counts(models):
    ft = models["fantasytalking"]
    assert frames_for(3.5, ft) == 81                  # 80.5 frames at 23 fps -> 1 + 4 * 20
    assert frames_for(1.0, ft) == 25                  # 23 -> 25
    assert frames_for(0.0, ft) == 1
    for d in (0.1, 0.7, 1.3, 2.2, 3.0):
        n = frames_for(d, ft)
        assert (n - 1) % 4 == 0 and n >= d * 23
    assert frames_for(2.0, models["cpu-head"], fps=25) == 50   # "any" rule, request fps
    with pytest.raises(ValueError, match="max_clip_s"):
        frames_for(4.0, ft)
    with pytest.raises(ValueError, match="no fixed fps"):
        frames_for(1.0, models["cpu-head"])
    with pytest.raises(ValueError, match="23 fps"):
        frames_for(1.0, ft, fps=25)


def test_snap_size_rounds_to_multiples_and_the_nearest_aspect(models):
    ft, head = models["fantasytalking"], models["cpu-head"]
    assert snap_size(1280, 800, ft) == (1280, 800)
    for w, h in [(320, 200), (1920, 1080), (1000, 1000), (700, 300), (17, 9)]:
        sw, sh = snap_size(w, h, ft)
        assert sw % 16 == 0 and sh % 16 == 0 and sw >= 16 and sh >= 16
        validate_request(sw, sh, 23, ft)              # whatever snap_size returns is accepted
    assert snap_size(1000, 1000, ft) == (1008, 1008)
    assert snap_size(641, 399, head) == (642, 400)    # even sizes, any aspect
    flux = ModelConstraints(model="x", stage="image", size_multiple=8, aspect_ratios=((16, 9),))
    sw, sh = snap_size(1280, 700, flux)
    assert (sw % 8, sh % 8) == (0, 0) and abs(sw / sh - 16 / 9) < 0.02


def test_clip_plan_never_exceeds_the_maximum(models):
    ft = models["fantasytalking"]
    for d in (0.4, 3.5, 3.6, 7.0, 10.0, 61.3):
        clips = clip_plan(d, ft)
        assert all(0 < c <= 3.5 + 1e-9 for c in clips)
        assert sum(clips) == pytest.approx(d)
        assert len(clips) == math.ceil(d / 3.5 - 1e-9)          # the fewest that fit
    assert clip_plan(10.0, ft) == pytest.approx([10 / 3] * 3)
    assert clip_plan(0.0, ft) == []
    assert clip_plan(100.0, models["cpu-head"]) == [100.0]


def test_validate_request_names_every_problem(models):
    ft = models["fantasytalking"]
    validate_request(1280, 800, 23, ft)
    validate_request(832, 480, 23, ft)                # Wan's 480p counts as 16:9
    with pytest.raises(ValueError) as err:
        validate_request(1000, 300, 25, ft)
    msg = str(err.value)
    assert "fantasytalking" in msg and "multiples of 16" in msg and "aspect ratio" in msg and "23 fps" in msg
    assert "nearest accepted size" in msg
    validate_request(640, 400, None, models["flux"])


# --------------------------------------------------------------------------- config errors


def test_ladder_config_errors_name_the_file_and_key():
    data = read_config("quality.yaml")
    bad = copy.deepcopy(data)
    bad["ladders"]["flux"]["rungs"][1]["width"] = -1
    with pytest.raises(ConfigError, match=r"quality\.yaml: ladders\.flux\.rungs\[1\]\.width"):
        load_ladders(data=bad)
    bad = copy.deepcopy(data)
    bad["ladders"]["fantasytalking"]["rungs"][2]["height"] = 200      # not a multiple of 16
    with pytest.raises(ConfigError, match=r"ladders\.fantasytalking\.rungs\[2\].*size_multiple"):
        load_ladders(data=bad)
    bad = copy.deepcopy(data)
    bad["ladders"]["fantasytalking"]["rungs"][0]["fps"] = 25
    with pytest.raises(ConfigError, match=r"rungs\[0\]\.fps.*23 fps"):
        load_ladders(data=bad)
    bad = copy.deepcopy(data)
    bad["ladders"]["flux"]["rungs"] = bad["ladders"]["flux"]["rungs"][:3]  # no CPU rung left
    with pytest.raises(ConfigError, match=r"ladders\.flux\.rungs\[2\]: the last rung must run on CPU"):
        load_ladders(data=bad)
    bad = copy.deepcopy(data)
    bad["ladders"]["flux"]["rungs"][2]["upscale"] = True              # 384x240 is not half of 1280x800
    with pytest.raises(ConfigError, match=r"ladders\.flux\.rungs\[2\]\.upscale"):
        load_ladders(data=bad)
    bad = copy.deepcopy(data)
    bad["policy"]["climb_after"] = 0
    with pytest.raises(ConfigError, match=r"quality\.yaml: policy\.climb_after"):
        load_ladders(data=bad)


def test_model_config_errors_name_the_file_and_key():
    data = read_config("models.yaml")
    bad = copy.deepcopy(data)
    bad["models"]["fantasytalking"]["frame_rule"] = "2+3n"
    with pytest.raises(ConfigError, match=r"models\.yaml: models\.fantasytalking\.frame_rule"):
        load_constraints(data=bad)
    bad = copy.deepcopy(data)
    bad["models"]["flux"]["aspect_ratios"] = ["wide"]
    with pytest.raises(ConfigError, match=r"models\.flux\.aspect_ratios\[0\]"):
        load_constraints(data=bad)
    bad = copy.deepcopy(data)
    bad["models"]["kokoro"]["gpu_counts"] = []
    with pytest.raises(ConfigError, match=r"models\.kokoro\.gpu_counts"):
        load_constraints(data=bad)
    bad = copy.deepcopy(data)
    bad["models"]["piper"]["max_clip"] = 3
    with pytest.raises(ConfigError, match=r"models\.piper\.max_clip: unknown key"):
        load_constraints(data=bad)
    with pytest.raises(ConfigError, match=r"models\.yaml: models"):
        load_constraints(data={"models": {}})
