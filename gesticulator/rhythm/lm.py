"""The rhythm GPT: a causal transformer over motion tokens, conditioned on audio (nanoGPT style).

One position per token step t (7.5 per second). Its input is the sum of

    the coarse codes of step t-1 (level 0 of every part)     what the body just did
    audio features around step t (non-causal conv stack)    what the voice does now and next ~0.5 s
    a style / speaker embedding                             one default style (id 0)
    an anchor: the coarse codes of a forced step a          lets the motion head *into* a forced
               within `anchor_horizon` tokens ahead, and   span (a spliced semantic gesture, a rest
               the distance a - t (or a learned "none")     pose at a pause) instead of jumping
    a learned position embedding inside the context window

and it predicts the coarse codes of step t: part by part, each part's head also seeing the codes
already chosen for the earlier parts of the same step (hands follow the arms). The finer RVQ
levels come from a small *non-causal* residual head over the whole sequence (MoMask's split):
level q of every step is predicted from the transformer states and levels < q of the step and
its neighbours, batched over time, so it costs L-1 cheap passes, not L-1 x T steps.

`generate` lives on the model: KV cache, temperature, top-k, a torch.Generator for seeds, forced
codes, and arbitrary length by sliding the context (when the window is full, the last `keep`
steps are re-encoded at positions 0..keep-1 and generation continues).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gesticulator.rhythm.features import FEATURE_DIM


@dataclass
class GPTConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 192
    block_size: int = 64  # context window in tokens (64 = 8.5 s)
    dropout: float = 0.1
    audio_dim: int = FEATURE_DIM
    audio_layers: int = 2  # conv layers (kernel 5) over audio features: sees 2 tokens ahead per layer
    num_styles: int = 1
    parts: int = 2
    levels: int = 4
    codebook_size: int = 512
    anchor_horizon: int = 8  # tokens (~1 s) before a forced step during which its codes are visible
    residual_layers: int = 2  # conv layers of the residual (fine-level) head
    label_smoothing: float = 0.1
    residual_weight: float = 1.0

    @property
    def audio_margin(self) -> int:
        """Tokens of audio context on each side the audio stack reads (its receptive radius)."""
        return 2 * self.audio_layers


# -- transformer blocks (nanoGPT) ------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        return tuple(z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self._heads(x)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(b, t, c)))

    def forward_cached(self, x: torch.Tensor, cache: torch.Tensor, pos: int) -> torch.Tensor:
        """x (1, t, C) at positions pos..pos+t-1; cache (2, 1, H, block, hd) holds keys/values."""
        b, t, c = x.shape
        q, k, v = self._heads(x)
        cache[0, :, :, pos : pos + t] = k
        cache[1, :, :, pos : pos + t] = v
        keys, values = cache[0, :, :, : pos + t], cache[1, :, :, : pos + t]
        # A prefill from an empty cache is causal; a single new step attends to everything cached.
        y = F.scaled_dot_product_attention(q, keys, values, is_causal=t > 1 and pos == 0)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))

    def forward_cached(self, x: torch.Tensor, cache: torch.Tensor, pos: int) -> torch.Tensor:
        x = x + self.attn.forward_cached(self.ln_1(x), cache, pos)
        return x + self.mlp(self.ln_2(x))


# -- conditioning and heads ------------------------------------------------------------------------
class AudioEncoder(nn.Module):
    """Normalise raw token-rate features (dataset mean/std in buffers), project, non-causal convs."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.margin = cfg.audio_margin
        self.register_buffer("mean", torch.zeros(cfg.audio_dim))
        self.register_buffer("std", torch.ones(cfg.audio_dim))
        self.proj = nn.Linear(cfg.audio_dim, cfg.n_embd)
        self.convs = nn.ModuleList(
            nn.Conv1d(cfg.n_embd, cfg.n_embd, 5, padding=2) for _ in range(cfg.audio_layers)
        )

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, T + 2 margin, F) raw, zero (= silence) outside the audio -> (B, T, C)."""
        x = self.proj((feats - self.mean) / self.std).transpose(1, 2)
        for conv in self.convs:
            x = x + conv(F.gelu(x))
        x = x.transpose(1, 2)
        return x[:, self.margin : x.shape[1] - self.margin] if self.margin else x


class ResidualHead(nn.Module):
    """Predicts RVQ level q >= 1 of every step from the transformer states and levels < q."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        c, k = cfg.n_embd, cfg.codebook_size
        self.levels = cfg.levels
        self.parts = cfg.parts
        self.state_proj = nn.Linear(c, c)
        fine = max(cfg.levels - 1, 1)
        # Known codes: one embedding per (part, level 0..L-2); predicted: one head per (part, level 1..L-1).
        self.code_emb = nn.ModuleList(nn.Embedding(k, c) for _ in range(cfg.parts * fine))
        self.level_emb = nn.Embedding(max(cfg.levels, 2), c)
        self.convs = nn.ModuleList(nn.Conv1d(c, c, 3, padding=1) for _ in range(cfg.residual_layers))
        self.ln = nn.LayerNorm(c)
        self.heads = nn.ModuleList(nn.Linear(c, k) for _ in range(cfg.parts * fine))

    def forward(self, states: torch.Tensor, codes: torch.Tensor, level: int) -> list[torch.Tensor]:
        """states (B, T, C), codes (B, T, parts, >= level) -> per-part logits (B, T, K) for `level`."""
        fine = self.levels - 1
        x = self.state_proj(states) + self.level_emb.weight[level]
        for p in range(self.parts):
            for q in range(level):
                x = x + self.code_emb[p * fine + q](codes[:, :, p, q])
        x = x.transpose(1, 2)
        for conv in self.convs:
            x = x + conv(F.gelu(x))
        x = self.ln(x.transpose(1, 2))
        return [self.heads[p * fine + level - 1](x) for p in range(self.parts)]


def sample_logits(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None
) -> torch.Tensor:
    """Sample indices from (..., K) logits; temperature <= 0 means greedy (argmax). Inverse-CDF
    sampling with uniforms from `generator` (a CPU generator works for logits on any device)."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    cdf = torch.softmax(logits.float(), dim=-1).cumsum(-1)
    uniform = torch.rand(cdf.shape[:-1], generator=generator).to(cdf.device) * 0.99999
    index = torch.searchsorted(cdf, uniform.unsqueeze(-1)).squeeze(-1)
    return index.clamp_(max=logits.shape[-1] - 1)


def _sample_row(logits: torch.Tensor, top_k: int | None, uniform: float) -> int:
    """One index from (K,) logits (temperature already applied) by inverse-CDF sampling with a
    pre-drawn uniform number in [0, 1): fewer, cheaper tensor ops than torch.multinomial."""
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        values, indices = torch.topk(logits, top_k)
        cdf = torch.softmax(values, dim=-1).cumsum(0)
        return int(indices[min(int(torch.searchsorted(cdf, uniform)), top_k - 1)])
    cdf = torch.softmax(logits, dim=-1).cumsum(0)
    return min(int(torch.searchsorted(cdf, uniform)), logits.shape[-1] - 1)


class _StepLayer:
    """One block on the single-step decoding path: functional calls on a (C,) vector, weights
    held as plain attributes, and the KV cache addressed through views made once (generation is
    bound by the number of tensor ops, not by arithmetic)."""

    def __init__(self, block: Block, cache: torch.Tensor):
        self.n_head = block.attn.n_head
        self.ln1 = (block.ln_1.weight, block.ln_1.bias)
        self.qkv = (block.attn.c_attn.weight, block.attn.c_attn.bias)
        self.proj = (block.attn.c_proj.weight, block.attn.c_proj.bias)
        self.ln2 = (block.ln_2.weight, block.ln_2.bias)
        self.fc = (block.mlp.c_fc.weight, block.mlp.c_fc.bias)
        self.fc_proj = (block.mlp.c_proj.weight, block.mlp.c_proj.bias)
        size = cache.shape[3]
        self.k_slot = cache[0].unbind(2)  # per position: (1, H, hd) views to write
        self.v_slot = cache[1].unbind(2)
        self.k_upto = [cache[0, :, :, : i + 1] for i in range(size)]  # per position: what to attend
        self.v_upto = [cache[1, :, :, : i + 1] for i in range(size)]

    def step(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        c = x.shape[0]
        h = F.layer_norm(x, (c,), *self.ln1)
        q, k, v = F.linear(h, *self.qkv).view(3, 1, self.n_head, -1).unbind(0)
        self.k_slot[pos].copy_(k)
        self.v_slot[pos].copy_(v)
        y = F.scaled_dot_product_attention(q.unsqueeze(2), self.k_upto[pos], self.v_upto[pos])
        x = x + F.linear(y.view(c), *self.proj)
        h = F.layer_norm(x, (c,), *self.ln2)
        return x + F.linear(F.gelu(F.linear(h, *self.fc)), *self.fc_proj)


# -- the model -------------------------------------------------------------------------------------
class RhythmGPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        c, k = cfg.n_embd, cfg.codebook_size
        self.audio = AudioEncoder(cfg)
        self.code_emb = nn.ModuleList(nn.Embedding(k, c) for _ in range(cfg.parts))  # previous step
        self.style_emb = nn.Embedding(cfg.num_styles, c)
        self.pos_emb = nn.Embedding(cfg.block_size, c)
        self.anchor_code_emb = nn.ModuleList(nn.Embedding(k, c) for _ in range(cfg.parts))
        self.anchor_dist_emb = nn.Embedding(cfg.anchor_horizon + 1, c)  # 0 = no anchor ahead
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(c)
        # Part p's head also sees the codes picked for parts < p at the same step.
        self.same_step_emb = nn.ModuleList(nn.Embedding(k, c) for _ in range(cfg.parts - 1))
        self.heads = nn.ModuleList(nn.Linear(c, k) for _ in range(cfg.parts))
        self.residual = ResidualHead(cfg) if cfg.levels > 1 else None
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def set_audio_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.audio.mean.copy_(torch.as_tensor(mean))
        self.audio.std.copy_(torch.as_tensor(std))

    # -- conditioning (everything known before sampling) -------------------------------------------
    def condition(
        self, audio: torch.Tensor, style: torch.Tensor, anchor_codes: torch.Tensor, anchor_dist: torch.Tensor
    ) -> torch.Tensor:
        """audio (B, T + 2 margin, F), style (B,), anchor_codes (B, T, parts), anchor_dist (B, T) -> (B, T, C)."""
        x = self.audio(audio) + self.style_emb(style)[:, None] + self.anchor_dist_emb(anchor_dist)
        has_anchor = (anchor_dist > 0).unsqueeze(-1).to(x.dtype)
        for p, emb in enumerate(self.anchor_code_emb):
            x = x + has_anchor * emb(anchor_codes[:, :, p])
        return x

    def _previous(self, prev_coarse: torch.Tensor) -> torch.Tensor:
        return sum(emb(prev_coarse[..., p]) for p, emb in enumerate(self.code_emb))

    def _part_logits(self, h: torch.Tensor, chosen: torch.Tensor, p: int) -> torch.Tensor:
        """Logits of part p's coarse code given codes `chosen` (..., >= p) of parts < p."""
        for q in range(p):
            h = h + self.same_step_emb[q](chosen[..., q])
        return self.heads[p](h)

    # -- training ----------------------------------------------------------------------------------
    def forward(
        self,
        prev_coarse: torch.Tensor,
        audio: torch.Tensor,
        style: torch.Tensor,
        anchor_codes: torch.Tensor,
        anchor_dist: torch.Tensor,
        targets: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Teacher-forced pass. prev_coarse (B, T, parts): level-0 codes of steps t-1; targets
        (B, T, parts, levels): codes of steps t. Returns (loss, per-term floats)."""
        cfg = self.config
        b, t, _ = prev_coarse.shape
        if t > cfg.block_size:
            raise ValueError(f"sequence of {t} tokens is longer than block_size {cfg.block_size}")
        x = self._previous(prev_coarse) + self.condition(audio, style, anchor_codes, anchor_dist)
        x = self.drop(x + self.pos_emb.weight[:t])
        for block in self.blocks:
            x = block(x)
        h = self.ln_f(x)
        smooth = cfg.label_smoothing
        terms: dict[str, torch.Tensor] = {}
        coarse = targets[..., 0]
        for p in range(cfg.parts):
            logits = self._part_logits(h, coarse, p)
            terms[f"ce_p{p}"] = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), coarse[..., p].reshape(-1), label_smoothing=smooth
            )
        loss = sum(terms.values()) / cfg.parts
        if self.residual is not None:
            res = []
            for level in range(1, cfg.levels):
                for p, logits in enumerate(self.residual(h, targets, level)):
                    res.append(
                        F.cross_entropy(
                            logits.reshape(-1, logits.shape[-1]),
                            targets[..., p, level].reshape(-1),
                            label_smoothing=smooth,
                        )
                    )
            terms["ce_res"] = sum(res) / len(res)
            loss = loss + cfg.residual_weight * terms["ce_res"]
        return loss, {k: float(v.detach()) for k, v in terms.items()}

    # -- generation --------------------------------------------------------------------------------
    @staticmethod
    def anchors(
        forced_coarse: torch.Tensor, forced_mask: torch.Tensor, horizon: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """For each step, the next forced step within `horizon` ahead: its coarse codes and the
        distance (0 = none). forced_coarse (T, parts), forced_mask (T,) -> ((T, parts), (T,))."""
        n = forced_mask.shape[0]
        codes = torch.zeros_like(forced_coarse)
        dist = torch.zeros(n, dtype=torch.long, device=forced_mask.device)
        next_forced = -1
        mask = forced_mask.tolist()
        for t in range(n - 1, -1, -1):
            if not mask[t] and next_forced >= 0 and next_forced - t <= horizon:
                codes[t] = forced_coarse[next_forced]
                dist[t] = next_forced - t
            if mask[t]:
                next_forced = t
        return codes, dist

    @torch.inference_mode()
    def generate(
        self,
        audio: torch.Tensor,
        *,
        prime: torch.Tensor,
        forced_codes: torch.Tensor | None = None,
        forced_mask: torch.Tensor | None = None,
        style: int = 0,
        temperature: float = 1.0,
        top_k: int | None = None,
        residual_temperature: float | None = None,
        generator: torch.Generator | None = None,
        keep: int | None = None,
    ) -> torch.Tensor:
        """Codes (T, parts, levels) for T = len(audio) token steps.

        audio: (T, F) raw features. prime: (parts,) coarse codes of the step before the first
        (the rest pose). forced_codes (T, parts, levels) / forced_mask (T,): steps whose codes are
        given (all levels); they are copied unchanged and the model continues from them.
        `keep`: steps of context kept when the window slides (default 3/4 of block_size).
        """
        cfg = self.config
        n, parts, levels = audio.shape[0], cfg.parts, cfg.levels
        device = audio.device
        if forced_codes is None or forced_mask is None:
            forced_codes = torch.zeros(n, parts, levels, dtype=torch.long, device=device)
            forced_mask = torch.zeros(n, dtype=torch.bool, device=device)
        keep = max(1, min(cfg.block_size - 1, keep if keep is not None else (3 * cfg.block_size) // 4))
        margin = cfg.audio_margin
        padded = F.pad(audio, (0, 0, margin, margin))[None]
        anchor_codes, anchor_dist = self.anchors(forced_codes[:, :, 0], forced_mask, cfg.anchor_horizon)
        style_t = torch.tensor([style], dtype=torch.long, device=device)
        cond = self.condition(padded, style_t, anchor_codes[None], anchor_dist[None])[0]  # (T, C)

        codes = forced_codes.clone()
        coarse = [prime.tolist()]  # coarse[t + 1]: level-0 codes of step t; coarse[0]: the prime
        forced_coarse = forced_codes[:, :, 0].tolist()
        mask = forced_mask.tolist()
        caches = [
            torch.zeros(2, 1, cfg.n_head, cfg.block_size, cfg.n_embd // cfg.n_head, device=device)
            for _ in self.blocks
        ]
        layers = [_StepLayer(block, cache) for block, cache in zip(self.blocks, caches, strict=True)]
        # Rows as Python lists of views: an embedding lookup becomes list indexing, not a tensor op.
        cond_rows = cond.unbind(0)
        pos_rows = self.pos_emb.weight.unbind(0)
        code_rows = [emb.weight.unbind(0) for emb in self.code_emb]
        same_step_rows = [emb.weight.unbind(0) for emb in self.same_step_emb]
        inv_temp = 1.0 / temperature if temperature > 0 else 1.0  # folded into the heads
        heads = [(head.weight * inv_temp, head.bias * inv_temp) for head in self.heads]
        ln_f = (self.ln_f.weight, self.ln_f.bias)
        # All random numbers up front from the caller's generator: same seed, same motion.
        uniforms = (torch.rand(n, parts, generator=generator) * 0.99999).tolist()
        states = []
        pos = 0
        for t in range(n):
            if pos == cfg.block_size:  # window full: re-encode the last `keep` steps at 0..keep-1
                lo = t - keep
                prev = torch.tensor(coarse[lo:t], device=device)
                x = self._previous(prev) + cond[lo:t] + self.pos_emb.weight[:keep]
                x = x[None]
                for block, cache in zip(self.blocks, caches, strict=True):
                    x = block.forward_cached(x, cache, 0)
                pos = keep
            x = cond_rows[t] + pos_rows[pos]
            for p, code in enumerate(coarse[t]):
                x = x + code_rows[p][code]
            for layer in layers:
                x = layer.step(x, pos)
            pos += 1
            h = F.layer_norm(x, x.shape, *ln_f)
            states.append(h)
            if mask[t]:
                coarse.append(forced_coarse[t])
                continue
            chosen: list[int] = []
            for p, head in enumerate(heads):
                hp = h
                for q, code in enumerate(chosen):
                    hp = hp + same_step_rows[q][code]
                logits = F.linear(hp, *head)
                chosen.append(
                    int(logits.argmax()) if temperature <= 0 else _sample_row(logits, top_k, uniforms[t][p])
                )
            coarse.append(chosen)
        codes[:, :, 0] = torch.tensor(coarse[1:], dtype=torch.long, device=device).reshape(n, parts)
        states = torch.stack(states)

        if self.residual is not None:
            res_temp = temperature if residual_temperature is None else residual_temperature
            free = ~forced_mask
            for level in range(1, levels):
                logits = self.residual(states[None], codes[None], level)
                for p in range(parts):
                    sampled = sample_logits(logits[p][0], res_temp, top_k, generator)
                    codes[:, p, level] = torch.where(free, sampled, codes[:, p, level])
        return codes
