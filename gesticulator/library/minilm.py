"""The bundled all-MiniLM-L6-v2 sentence encoder in plain torch: no transformers import.

sentence-transformers builds this model from `transformers` (BertModel + BertTokenizerFast), whose
import alone takes 4-5 s on the 2-core development CPU: it was half of `Gesticulator.load()`. The
model itself is a 6-layer BERT (384 wide, 12 heads) followed by mean pooling over the tokens and L2
normalisation, so it is computed here directly: the weights from `model.safetensors`, the
tokenizer from `tokenizer.json` with the Rust `tokenizers` package (the same fast tokenizer that
transformers wraps), the same truncation (`max_seq_length`, 256) and padding (to the longest text
of each batch, length-sorted batches as sentence-transformers makes them). Load: ~0.05 s, first
encode ~0.1 s. The vectors equal sentence-transformers': at most 2e-7 apart over the default
library's 1431 texts (`tests/test_cold_start.py` checks 1e-5).

`load_encoder(path)` returns `None` for a model folder that is not exactly this kind of model
(another architecture, pooling or module list); the caller then uses sentence-transformers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

#: The sentence-transformers module list this encoder reproduces, by type.
_MODULE_TYPES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)


class MiniLM:
    """BERT encoder + mean pooling + L2 normalisation: token ids -> unit sentence vectors.

    Holds the weights of a transformers `BertModel` state dict under their own names and runs the
    forward pass with torch.nn.functional (inference only: no dropout, no modules, so nothing is
    randomly initialised before the weights are loaded)."""

    def __init__(self, config: dict, state: dict[str, torch.Tensor]):
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in state else ""
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        names = [f"embeddings.{n}" for n in _EMBEDDINGS] + [
            f"encoder.layer.{i}.{n}" for i in range(self.layers) for n in _LAYER
        ]
        missing = [n for n in names if prefix + n not in state]
        if missing:
            raise KeyError(f"BERT weights missing: {', '.join(missing[:3])}")
        self.w = {n: state[prefix + n].float() for n in names}
        self.dim = self.w["embeddings.word_embeddings.weight"].shape[1]

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, N) int64 -> (B, dim) float32, unit rows."""
        w = self.w
        b, n = ids.shape
        x = (
            F.embedding(ids, w["embeddings.word_embeddings.weight"])
            + F.embedding(torch.zeros_like(ids), w["embeddings.token_type_embeddings.weight"])
            + F.embedding(torch.arange(n)[None], w["embeddings.position_embeddings.weight"])
        )
        x = self._norm(x, "embeddings.LayerNorm")
        # Additive attention bias: 0 for real tokens, the dtype's minimum for padding (as BERT does).
        bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, heads, N, D / heads)
            return t.view(b, n, self.heads, -1).transpose(1, 2)

        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            q, k, v = (heads(self._linear(x, f"{p}.attention.self.{m}")) for m in ("query", "key", "value"))
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(b, n, -1)
            x = self._norm(
                x + self._linear(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm"
            )
            inner = F.gelu(self._linear(x, f"{p}.intermediate.dense"))
            x = self._norm(x + self._linear(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        weights = mask[..., None].to(x.dtype)
        pooled = (x * weights).sum(dim=1) / torch.clamp(weights.sum(dim=1), min=1e-9)
        return F.normalize(pooled, p=2, dim=-1)


_EMBEDDINGS = tuple(
    f"{m}.weight" for m in ("word_embeddings", "position_embeddings", "token_type_embeddings")
) + ("LayerNorm.weight", "LayerNorm.bias")
_LAYER = tuple(
    f"{m}.{p}"
    for m in (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
        "attention.output.LayerNorm",
        "intermediate.dense",
        "output.dense",
        "output.LayerNorm",
    )
    for p in ("weight", "bias")
)


class MiniLMEncoder:
    """`encode(texts)` like `SentenceTransformer.encode(..., normalize_embeddings=True)` for a
    BERT + mean pooling + Normalize model folder."""

    def __init__(self, path: Path, model: MiniLM, tokenizer, max_length: int):
        self.path = path
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        convert_to_numpy: bool = True,
        normalize_embeddings: bool = True,
        show_progress_bar: bool = False,
    ) -> np.ndarray:
        """(n, dim) float32 unit rows (the model ends in Normalize, so they are unit rows whatever
        `normalize_embeddings` says; the keywords are `SentenceTransformer.encode`'s). Texts are
        stripped, sorted by length (longest first) and encoded in batches padded to their longest
        text, as sentence-transformers does."""
        texts = [str(t).strip() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.model.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                enc = self.tokenizer.encode_batch([texts[i] for i in rows])
                ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
                mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long)
                out[rows] = self.model(ids, mask).numpy()
        return out


def load_encoder(path: str | Path) -> MiniLMEncoder | None:
    """The encoder of a sentence-transformers folder holding a BERT with mean pooling and
    normalisation (all-MiniLM-L6-v2 and its kin), or None for any other kind of model."""
    path = Path(path)
    try:
        modules = json.loads((path / "modules.json").read_text())
        config = json.loads((path / "config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        st_config = json.loads((path / "sentence_bert_config.json").read_text())
    except (OSError, ValueError):
        return None
    types = tuple(m.get("type") for m in modules)
    pooling_modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if (
        types != _MODULE_TYPES
        or modules[0].get("path", "") != ""
        or modules[1].get("path") != "1_Pooling"
        or config.get("model_type") != "bert"
        or config.get("hidden_act") != "gelu"
        or config.get("position_embedding_type", "absolute") != "absolute"
        or pooling_modes != {"pooling_mode_mean_tokens"}
        or st_config.get("do_lower_case", False)
        or not (path / "tokenizer.json").is_file()
        or not (path / "model.safetensors").is_file()
    ):
        return None
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    max_length = int(st_config.get("max_seq_length") or config["max_position_embeddings"])
    max_length = min(max_length, int(config["max_position_embeddings"]))
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    pad_id = int(config.get("pad_token_id", 0))
    tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id) or "[PAD]")
    model = MiniLM(config, load_file(str(path / "model.safetensors"), device="cpu"))
    return MiniLMEncoder(path, model, tokenizer, max_length)
