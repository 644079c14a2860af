"""GPU stage adapters (issue 5): FLUX.1-dev, FLUX.1-Kontext, FantasyTalking on Wan2.1 I2V, Hunyuan
FramePack F1, Real-ESRGAN x2 and Kokoro, behind one small interface per stage kind.

- :mod:`.interfaces` the interfaces (``ImageAdapter``, ``EditAdapter``, ``TalkingHeadAdapter``,
  ``VideoAdapter``, ``UpscaleAdapter``, ``TtsAdapter``);
- :mod:`.flux`, :mod:`.wan` (+ :mod:`.audio`, FantasyTalking's audio conditioning), :mod:`.framepack`,
  :mod:`.upscale`, :mod:`.kokoro`: the implementations on diffusers / transformers / spandrel / kokoro;
- :mod:`.stage`: the worker-side stages, drop-ins for the CPU rung (registered in
  ``streamwise.stages.registry``);
- :mod:`.config`, :mod:`.build`, :mod:`.weights`: which model uses which code and checkpoints
  (``configs/models.yaml`` ``adapters``), found locally, never downloaded;
- :mod:`.parallel`: xDiT (xfuser) Ulysses x Ring degrees, GPU path only;
- :mod:`.tiny`: tiny random-weight checkpoints of the same architectures, for tests and
  ``streamwise profile --tiny``.

Nothing here imports torch at module import time except the model modules themselves, which only
:mod:`.build` imports, inside a worker's ``load()``.
"""
