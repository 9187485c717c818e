"""`ResidualVQ`: vector-quantize-pytorch's residual VQ, imported only when it is trained.

Importing `vector_quantize_pytorch` takes ~2 s (it pulls in einx, which imports torch._dynamo and
sympy): a fifth of a cold `Gesticulator.load()`, for a layer that at inference only looks codes up
in its codebooks. This class takes the same constructor arguments and has the same state dict
(`layers.{i}._codebook.{initted, cluster_size, embed_avg, embed}`), and runs inference itself in
plain torch:

- `get_output_from_indices(codes)`: the sum of the levels' codebook vectors (decode);
- `forward(x)` in eval mode: nearest codebook vector per level on the residual, with the library's
  own distance arithmetic, so the codes are bit-identical (encode).

Anything else (a training-mode forward: k-means init, EMA codebook updates, quantize dropout,
dead-code expiry; a forward with masks, indices or beam search; a codebook not yet initialised;
constructor arguments this class does not mirror) turns the instance *in place* into a real
`vector_quantize_pytorch.ResidualVQ` carrying the same buffers, so training code sees the
library's module and nothing else changes. For the mirrored configuration (k-means init) the real
constructor draws no random numbers, so building it late does not change a seeded training run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: Constructor arguments mirrored here; any other makes the instance the real one at once.
_MIRRORED = frozenset(
    {
        "dim",
        "num_quantizers",
        "codebook_size",
        "quantize_dropout",
        "kmeans_init",
        "kmeans_iters",
        "decay",
        "threshold_ema_dead_code",
        "commitment_weight",
    }
)


class _Codebook(nn.Module):
    """The buffers of vector-quantize-pytorch's (Euclidean, single-head) `Codebook`, as its
    constructor makes them with k-means init."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self.register_buffer("initted", torch.tensor(False))
        self.register_buffer("cluster_size", torch.ones(1, codebook_size))
        self.register_buffer("embed_avg", torch.zeros(1, codebook_size, dim))
        self.register_buffer("embed", torch.zeros(1, codebook_size, dim))


class _Layer(nn.Module):
    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        self._codebook = _Codebook(dim, codebook_size)


class ResidualVQ(nn.Module):
    """`vector_quantize_pytorch.ResidualVQ(**kwargs)` for inference without importing it; see the
    module docstring."""

    def __init__(self, **kwargs: Any):
        super().__init__()
        self._vq_kwargs = dict(kwargs)
        self.num_quantizers = int(kwargs["num_quantizers"])
        self.codebook_size = int(kwargs["codebook_size"])
        self.layers = nn.ModuleList(
            _Layer(int(kwargs["dim"]), self.codebook_size) for _ in range(self.num_quantizers)
        )
        if set(kwargs) - _MIRRORED or not kwargs.get("kmeans_init", False):
            self.materialise(copy_state=False)  # the library initialises its codebooks itself

    # -- inference -----------------------------------------------------------------------------------
    @property
    def codebooks(self) -> torch.Tensor:
        """(levels, codebook_size, dim)."""
        return torch.stack([layer._codebook.embed[0] for layer in self.layers])

    def get_codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (..., levels or fewer; -1 = dropped) -> per-level vectors (levels, ..., dim)."""
        levels = indices.shape[-1]
        if levels > self.num_quantizers:
            raise ValueError(f"{levels} code levels given, the quantiser has {self.num_quantizers}")
        if levels < self.num_quantizers:
            pad = indices.new_full((*indices.shape[:-1], self.num_quantizers - levels), -1)
            indices = torch.cat([indices, pad], dim=-1)
        dropped = indices == -1
        indices = indices.masked_fill(dropped, 0)
        codes = torch.stack(
            [layer._codebook.embed[0][indices[..., q]] for q, layer in enumerate(self.layers)]
        )
        return codes.masked_fill(dropped.movedim(-1, 0)[..., None], 0.0)

    def get_output_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (B, N, levels) -> the quantised latent (B, N, dim): the sum over levels."""
        return self.get_codes_from_indices(indices).sum(dim=0)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any):
        """Eval mode: x (B, N, dim) -> (quantised (B, N, dim), codes (B, N, levels), commitment
        losses (levels,), zero in eval mode), as the library returns them."""
        initted = all(bool(layer._codebook.initted) for layer in self.layers)
        if self.training or args or kwargs or not initted or x.ndim != 3:
            self.materialise()
            return self.forward(x, *args, **kwargs)
        residual = x
        quantised = torch.zeros_like(x)
        codes = []
        for layer in self.layers:
            embed = layer._codebook.embed.to(x.dtype)  # (1, C, D)
            flat = residual.reshape(1, -1, residual.shape[-1])  # (1, B*N, D)
            # vector_quantize_pytorch.cdist, op for op (argmax of -dist picks the same code).
            x2 = (flat**2).sum(dim=-1)
            y2 = (embed**2).sum(dim=-1)
            xy = torch.einsum("b i d, b j d -> b i j", flat, embed) * -2
            dist = -(x2[:, :, None] + y2[:, None, :] + xy).clamp(min=1e-8).sqrt()
            index = dist.argmax(dim=-1).reshape(residual.shape[:-1])  # (B, N)
            vectors = embed[0][index].type(x.dtype)
            residual = residual - vectors
            quantised = quantised + vectors
            codes.append(index)
        losses = torch.zeros(self.num_quantizers, device=x.device)
        return quantised, torch.stack(codes, dim=-1), losses

    # -- the real module -----------------------------------------------------------------------------
    def materialise(self, *, copy_state: bool = True) -> nn.Module:
        """Turn this instance into a `vector_quantize_pytorch.ResidualVQ` with the same arguments
        and (`copy_state`) buffers, in place: parents and references keep working. Returns it."""
        try:
            from vector_quantize_pytorch import ResidualVQ as LibraryResidualVQ
        except ImportError:
            from gesticulator.errors import MissingDependencyError

            raise MissingDependencyError(
                "training the motion tokenizer needs vector-quantize-pytorch",
                "pip install vector-quantize-pytorch",
            ) from None
        embed = self.layers[0]._codebook.embed
        real = LibraryResidualVQ(**self._vq_kwargs).to(device=embed.device, dtype=embed.dtype)
        if copy_state:
            real.load_state_dict(self.state_dict())
        real.train(self.training)
        self.__dict__.clear()
        self.__dict__.update(real.__dict__)
        self.__class__ = LibraryResidualVQ
        return self
