"""Motion tokenizer: a residual VQ-VAE per body part (T2M-GPT / MoMask style), read top to bottom.

    motion parts (B, T, D) at 30 fps            upper: 13 joints x 6D, hands: 30 joints x 6D
      -> normalise with the dataset mean/std     (stored in the checkpoint)
      -> 1-D conv encoder, x4 temporal downsampling          (B, T/4, latent)
      -> ResidualVQ (vector-quantize-pytorch), `levels` codebooks   codes (B, T/4, levels)
      -> 1-D conv decoder, x4 upsampling -> de-normalise     (B, T, D)

Codes of all parts are stacked as (B, T/4, parts, levels) int64. Level 0 is the coarse code the
GPT predicts autoregressively; levels 1.. refine it (the residual head predicts them). Training
uses quantize dropout (random number of levels), so decoding from the first few levels is
meaningful too. `decode` needs only the decoder and the codebooks, never the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gesticulator.rhythm.representation import PART_DIMS, PART_NAMES
from gesticulator.rhythm.vq import ResidualVQ  # vector_quantize_pytorch is imported only to train

DOWNSAMPLE = 4  # 30 fps frames per token (two stride-2 stages)


@dataclass
class TokenizerConfig:
    hidden: int = 128  # conv channels
    latent: int = 64  # dimension of the quantised latent
    depth: int = 2  # residual blocks per resolution stage
    levels: int = 4  # residual quantiser levels (codebooks per part)
    codebook_size: int = 512
    commitment_weight: float = 0.02  # MoMask's beta: the EMA codebook needs only a light pull
    codebook_decay: float = 0.99
    dead_code_threshold: float = 2.0  # EMA cluster size below which a code is re-seeded from the batch
    parts: tuple[str, ...] = PART_NAMES

    def __post_init__(self) -> None:
        self.parts = tuple(self.parts)
        unknown = [p for p in self.parts if p not in PART_DIMS]
        if unknown:
            raise ValueError(f"unknown body parts {unknown}; known: {', '.join(PART_DIMS)}")


class ResBlock(nn.Module):
    """x + conv1x1(relu(dilated conv3(relu(x)))): growing dilation widens the receptive field cheaply."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.proj = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(F.relu(self.conv(F.relu(x))))


def _res_stack(channels: int, depth: int) -> list[nn.Module]:
    return [ResBlock(channels, 3**i) for i in range(depth)]


class Encoder(nn.Module):
    def __init__(self, dim_in: int, cfg: TokenizerConfig):
        super().__init__()
        c = cfg.hidden
        layers: list[nn.Module] = [nn.Conv1d(dim_in, c, 3, padding=1), nn.ReLU()]
        for _ in range(2):  # two stride-2 stages: x4 downsampling
            layers += [nn.Conv1d(c, c, 4, stride=2, padding=1), *_res_stack(c, cfg.depth)]
        layers += [nn.ReLU(), nn.Conv1d(c, cfg.latent, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T) -> (B, latent, T/4)
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, dim_out: int, cfg: TokenizerConfig):
        super().__init__()
        c = cfg.hidden
        layers: list[nn.Module] = [nn.Conv1d(cfg.latent, c, 3, padding=1), nn.ReLU()]
        for _ in range(2):
            layers += [*_res_stack(c, cfg.depth), nn.Upsample(scale_factor=2, mode="nearest")]
            layers += [nn.Conv1d(c, c, 3, padding=1)]
        layers += [nn.ReLU(), nn.Conv1d(c, dim_out, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent, T/4) -> (B, D, T)
        return self.net(z)


class PartVQVAE(nn.Module):
    """Encoder + residual VQ + decoder for one body part, with its normalisation statistics."""

    def __init__(self, dim: int, cfg: TokenizerConfig):
        super().__init__()
        self.dim = dim
        self.encoder = Encoder(dim, cfg)
        self.decoder = Decoder(dim, cfg)
        self.quantizer = ResidualVQ(
            dim=cfg.latent,
            num_quantizers=cfg.levels,
            codebook_size=cfg.codebook_size,
            quantize_dropout=cfg.levels > 1,
            kmeans_init=True,
            kmeans_iters=10,
            decay=cfg.codebook_decay,
            threshold_ema_dead_code=cfg.dead_code_threshold,
            commitment_weight=cfg.commitment_weight,
        )
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def denormalise(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised input (B, T, D) -> (normalised reconstruction, codes (B, T/4, L), commit loss)."""
        z = self.encoder(x.transpose(1, 2)).transpose(1, 2)
        quantised, codes, commit = self.quantizer(z)
        recon = self.decoder(quantised.transpose(1, 2)).transpose(1, 2)
        return recon, codes, commit.sum()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.normalise(x).transpose(1, 2)).transpose(1, 2)
        _, codes, _ = self.quantizer(z)
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        z = self.quantizer.get_output_from_indices(codes)
        return self.denormalise(self.decoder(z.transpose(1, 2)).transpose(1, 2))


class MotionTokenizer(nn.Module):
    """Per-part residual VQ-VAEs. Motion parts <-> codes (B, T/4, parts, levels)."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.config = cfg
        self.parts = nn.ModuleDict({name: PartVQVAE(PART_DIMS[name], cfg) for name in cfg.parts})

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(self.parts.keys())

    def set_normalisation(self, stats: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        for name, (mean, std) in stats.items():
            self.parts[name].mean.copy_(torch.as_tensor(mean))
            self.parts[name].std.copy_(torch.as_tensor(std))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Training pass: per part the normalised target, its reconstruction, codes and commit loss.

        Time lengths must be multiples of 4 (the data sampler guarantees it)."""
        out = {}
        for name, vqvae in self.parts.items():
            target = vqvae.normalise(batch[name])
            recon, codes, commit = vqvae(target)
            out[name] = {"target": target, "recon": recon, "codes": codes, "commit": commit}
        return out

    @torch.no_grad()
    def encode(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """{part: (B, T, D)} -> codes (B, ceil(T/4), parts, levels) int64.

        T is padded to a multiple of 4 by repeating the last frame (a held pose)."""
        codes = []
        for name, vqvae in self.parts.items():
            x = parts[name]
            pad = (-x.shape[1]) % DOWNSAMPLE
            if pad:
                x = torch.cat([x, x[:, -1:].expand(-1, pad, -1)], dim=1)
            codes.append(vqvae.encode(x))
        return torch.stack(codes, dim=2)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> dict[str, torch.Tensor]:
        """codes (B, N, parts, levels) -> {part: (B, 4N, D)} 6D rotations."""
        return {name: vqvae.decode(codes[:, :, i]) for i, (name, vqvae) in enumerate(self.parts.items())}
