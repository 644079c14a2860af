"""Runtime profiles (streamwise.core.profiles): reference rows, fitted scaling, CPU stages, online correction."""

from __future__ import annotations

import math
import random
from importlib import resources

import pytest
import yaml

from streamwise.core.profiles import HARDWARE, OnlineCorrection, ProfileBook, _rows

DIT = ("fantasytalking", "hunyuanframepack")


@pytest.fixture(scope="module")
def book() -> ProfileBook:
    return ProfileBook.load()


def gpu_counts(book: ProfileBook, model: str, hw: str) -> list[int]:
    return [g for h, g in book.known(model) if h == hw]


def test_source_note_is_packaged():
    note = resources.files("streamwise.configs").joinpath("profiles", "reference", "README.md").read_text()
    for needle in ("2603.05800", "Azure/realtimevideogen", "9bcbc4e", "MIT", "Copyright (c) Microsoft Corporation"):
        assert needle in note


def test_all_models_and_hardware_loaded(book):
    for model in (*DIT, "flux", "gemma", "kokoro", "realesrgan"):
        assert {h for h, _ in book.known(model)} == set(HARDWARE)
    assert gpu_counts(book, "fantasytalking", "h100") == [1, 2, 4, 8, 10, 16, 20, 24, 32, 40]
    assert gpu_counts(book, "flux", "gb200") == [1, 2, 4, 8, 16]
    assert gpu_counts(book, "kokoro", "a100") == [1]


def test_mapping_rows_reproduced(book):
    """Every row of the mapping files, queried at its own configuration (measured: <= 0.07 %,
    the FramePack files' total_time differs from steps x avg + vae by up to 3 ms)."""
    for hw in HARDWARE:
        for model, tag in (("fantasytalking", "ft"), ("hunyuanframepack", "hf")):
            for r in _rows(f"latency_{tag}_mapping_{hw}.csv"):
                got = book.runtime_s(model, hw, int(r["world_size"]), width=int(r["width"]), height=int(r["height"]),
                                     steps=int(r["steps"]), frames=int(r["frames"]))
                assert got == pytest.approx(float(r["total_time"]), rel=1e-3)
        for r in _rows(f"latency_flux_mapping_{hw}.csv"):
            got = book.runtime_s("flux", hw, int(r["world_size"]), width=1280, height=800, steps=1)
            assert got == pytest.approx(float(r["avg_steps_time"]), rel=1e-9)
        for r in _rows(f"latency_gemma_{hw}.csv"):
            first, per = float(r["first_scene_time"]), float(r["per_scene_time"])
            assert book.runtime_s("gemma", hw, int(r["tp"])) == pytest.approx(first)
            assert book.runtime_s("gemma", hw, int(r["tp"]), units=5) == pytest.approx(first + 4 * per)
        for r in _rows(f"latency_others_{hw}.csv"):
            assert book.runtime_s("kokoro", hw, 1, units=3) == pytest.approx(3 * float(r["time"]))
        for r in _rows(f"latency_upscaler_{hw}.csv"):
            per_frame = float(r["avg_steps_time"])
            assert book.runtime_s("upscaler", hw, int(r["world_size"]), frames=77) == pytest.approx(77 * per_frame)
            assert book.runtime_s("upscaler", hw, int(r["world_size"]), frames=77, width=640, height=400) == \
                pytest.approx(77 * per_frame / 4)


def test_fit_errors(book):
    """Mapping rows: max 0.07 %. Step shapes on the raw benchmark rows (measured): FantasyTalking
    <= 5.6 %, FLUX <= 4.4 %, FramePack <= 3.3 %; VAE shapes <= 9.1 %."""
    assert book.fits
    for f in book.fits:
        if f.gpus is None:
            assert f.max_rel_err < 1e-3, f
        elif "step shape" in f.source:
            assert f.max_rel_err < 0.06 and f.median_rel_err < 0.02, f
        else:
            assert f.max_rel_err < 0.10 and f.median_rel_err < 0.02, f
    report = book.fit_report()
    for model in (*DIT, "flux", "gemma", "kokoro", "realesrgan"):
        for hw in HARDWARE:
            assert any(line.split()[:2] == [model, hw] for line in report.splitlines())


@pytest.mark.parametrize("model", [*DIT, "flux"])
def test_monotonic_in_steps_frames_pixels(book, model):
    sizes = [(320, 200), (320, 240), (640, 400), (640, 480), (1024, 640), (1280, 720), (1280, 800), (1920, 1080)]
    frames = {"fantasytalking": [9, 21, 41, 61, 77], "hunyuanframepack": [36, 72, 144, 324], "flux": [None]}[model]
    for hw, g in book.known(model):
        for f in frames:
            by_steps = [book.runtime_s(model, hw, g, width=640, height=400, frames=f, steps=s) for s in (1, 4, 10, 20, 50)]
            assert all(a < b for a, b in zip(by_steps, by_steps[1:]))
            by_pixels = [book.runtime_s(model, hw, g, width=w, height=h, frames=f, steps=10) for w, h in sizes]
            assert all(a <= b for a, b in zip(by_pixels, by_pixels[1:]))
            if model != "flux" or g == 1:  # multi-GPU FLUX steps sit on a floor up to ~1280x800
                assert all(a < b for a, b in zip(by_pixels[2:], by_pixels[3:]))  # strictly from 640x400 up
        if model != "flux":
            for w, h in sizes:
                by_frames = [book.runtime_s(model, hw, g, width=w, height=h, frames=f, steps=10) for f in frames]
                assert all(a < b for a, b in zip(by_frames, by_frames[1:]))


@pytest.mark.parametrize("model", DIT)
def test_more_gpus_faster_for_dit_models(book, model):
    frames = 77 if model == "fantasytalking" else 324
    for hw in HARDWARE:
        counts = gpu_counts(book, model, hw)
        for w, h, steps in ((None, None, None), (640, 400, 10), (640, 480, 20), (1280, 720, 20), (1280, 800, 50)):
            times = [book.runtime_s(model, hw, g, width=w, height=h, steps=steps, frames=frames) for g in counts]
            assert all(a > b for a, b in zip(times, times[1:])), (hw, w, h, steps, times)


@pytest.mark.parametrize("model", [*DIT, "flux", "gemma", "realesrgan"])
def test_newer_gpus_faster_than_a100(book, model):
    sizes = [(320, 200), (640, 400), (640, 480), (1280, 720), (1280, 800)]
    frames = {"fantasytalking": [9, 77], "hunyuanframepack": [36, 324]}.get(model, [None])
    for g in (1, 2, 4, 8):
        for (w, h), f, steps in ((s, f, st) for s in sizes for f in frames for st in (4, 10, 30)):
            a100 = book.runtime_s(model, "a100", g, width=w, height=h, frames=f, steps=steps)
            h200 = book.runtime_s(model, "h200", g, width=w, height=h, frames=f, steps=steps)
            gb200 = book.runtime_s(model, "gb200", g, width=w, height=h, frames=f, steps=steps)
            assert gb200 < a100 and h200 < a100 and book.runtime_s(model, "h100", g, width=w, height=h,
                                                                    frames=f, steps=steps) < a100
            assert gb200 <= h200


def test_cpu_stages_from_cpu_yaml(book):
    stages = yaml.safe_load(resources.files("streamwise.configs").joinpath("profiles", "cpu.yaml").read_text())["stages"]
    assert set(stages) <= set(book.models())
    for name, s in stages.items():
        assert book.known(name) == [("cpu", 0)]
        assert book.runtime_s(name, "cpu", 0) == pytest.approx(s["base_s"])
        assert book.runtime_s(name, "cpu", 0, units=10) == pytest.approx(s["base_s"] + s.get("per_unit_s", 0.0) * 10)
    assert book.runtime_s("tts", "cpu", 0, units=3.5) == pytest.approx(0.05 + 0.06 * 3.5)
    assert book.runtime_s("video", "CPU", 1, frames=77) == pytest.approx(0.03 + 0.004 * 77)  # gpus ignored on cpu
    with pytest.raises(KeyError):
        book.runtime_s("tts", "h100", 1)


def test_aliases(book):
    ref = book.runtime_s("fantasytalking", "h100", 4)
    assert book.runtime_s("ft", "h100", 4) == book.runtime_s("FT", "H100", 4) == ref
    assert book.runtime_s("hf", "a100", 2) == book.runtime_s("framepack", "a100", 2) == \
        book.runtime_s("hunyuanframepack", "a100", 2)
    assert book.runtime_s("others", "h200", 1, units=2) == book.runtime_s("kokoro", "h200", 1, units=2)
    assert book.runtime_s("upscaler", "gb200", 4, frames=9) == book.runtime_s("realesrgan", "gb200", 4, frames=9)
    assert book.known("ft") == book.known("fantasytalking")


def test_unknown_combinations_raise_keyerror_listing_known(book):
    with pytest.raises(KeyError) as err:
        book.runtime_s("ft", "h100", 3)
    assert "('h100', 4)" in str(err.value) and "('gb200', 40)" in str(err.value)
    with pytest.raises(KeyError, match="tpu"):
        book.runtime_s("flux", "tpu", 1)
    with pytest.raises(KeyError) as err:
        book.runtime_s("sora", "h100", 1)
    assert "fantasytalking" in str(err.value) and "tts" in str(err.value)
    with pytest.raises(KeyError):
        book.known("sora")
    with pytest.raises(ValueError):
        book.runtime_s("ft", "h100", 4, width=0)
    with pytest.raises(ValueError):
        book.runtime_s("tts", "cpu", 0, units=-1)


def test_correction_unseen_is_one():
    c = OnlineCorrection()
    assert c.factor(("w1", "tts")) == 1.0
    assert c.corrected(("w1", "tts"), 2.0) == 2.0


def test_correction_converges_to_true_ratio():
    rng = random.Random(7)
    c = OnlineCorrection()
    for _ in range(10):
        c.observe("clean", 2.0, 5.0)
        c.observe("noisy", 2.0, 5.0 * rng.uniform(0.9, 1.1))
    c.observe("cold", 2.0, 50.0)  # a first outlier (cold start, 10x)
    for _ in range(10):
        c.observe("cold", 2.0, 5.0)
    assert c.factor("clean") == pytest.approx(2.5, rel=0.02)  # 1.0 + 1.5 * (1 - 0.7**10)
    assert c.factor("noisy") == pytest.approx(2.5, rel=0.10)  # +-10 % jitter on each observation
    assert c.factor("cold") == pytest.approx(2.5, rel=0.08)  # 2.5 + (8.2 - 2.5) * 0.7**10
    for _ in range(10):
        c.observe("clean", 2.0, 5.0)
    assert c.factor("clean") == pytest.approx(2.5, rel=1e-3)
    assert c.corrected("clean", 4.0) == pytest.approx(10.0, rel=1e-3)
    assert c.counts["clean"] == 20 and c.counts["cold"] == 11


def test_correction_ignores_garbage_and_clamps():
    c = OnlineCorrection(alpha=1.0)
    c.observe("k", 1.0, 2.0)
    for expected, observed in ((0.0, 1.0), (1.0, 0.0), (-1.0, 2.0), (1.0, -3.0), (math.nan, 1.0), (1.0, math.inf),
                               (None, 1.0), ("x", 1.0)):
        assert c.observe("k", expected, observed) is None  # type: ignore[arg-type]
    assert c.factor("k") == 2.0 and c.counts["k"] == 1
    c.observe("slow", 1.0, 1e6)
    c.observe("fast", 1.0, 1e-9)
    assert c.factor("slow") == pytest.approx(50.0) and c.factor("fast") == pytest.approx(0.05)
    for _ in range(20):
        c.observe("slow", 1.0, 1e6)
    assert c.factor("slow") == pytest.approx(50.0)
    with pytest.raises(ValueError):
        OnlineCorrection(alpha=0.0)
    with pytest.raises(ValueError):
        OnlineCorrection(lo=2.0)
