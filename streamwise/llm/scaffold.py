"""Scaffolded decoding of the screenplay's JSON Lines for a transformers causal LM (used by
:class:`streamwise.llm.backends.TransformersBackend` when a JSON schema is asked for): this code
writes the JSON structure, the model fills in the values."""

from __future__ import annotations

import json
import time


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
