"""Train the rhythm model: tokenizer first, then the GPT on the frozen tokenizer's codes.

    from gesticulator.rhythm.train import train_rhythm, export_checkpoint
    result = train_rhythm("pipelines/rhythm_default.yaml", "corpus/", "runs/rhythm_default")
    export_checkpoint("runs/rhythm_default", "checkpoints/rhythm_default")

One function does everything and is safe to call again: a run directory holds the resolved
config, `tokenizer.pt` and `gpt.pt` (the latest checkpoint of each stage, written atomically,
with the config, the data hash, step and elapsed time), `train_log.jsonl`, and `model/` (the
exported inference checkpoint). Calling `train_rhythm` again on the same run directory continues
from the checkpoints (`resume=True`): a finished stage is skipped, an interrupted one continues
from its step count, and raising `steps` in the config trains further.

Time budget: `max_minutes` bounds the whole run (data preparation included). The tokenizer gets
`tokenizer_train.time_share` of it, the GPT what is left. The learning-rate schedule runs on
progress = max(step / steps, elapsed / stage budget), so a stage cut short by the clock still
ends with a decayed learning rate.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from gesticulator.errors import GesticulatorError, InputFileError
from gesticulator.rhythm.data import DataConfig, RhythmDataset, load_dataset
from gesticulator.rhythm.features import FEATURE_DIM, FEATURE_VERSION
from gesticulator.rhythm.lm import GPTConfig, RhythmGPT
from gesticulator.rhythm.representation import PART_NAMES, REPRESENTATION_VERSION, rest_parts
from gesticulator.rhythm.tokenizer import MotionTokenizer, TokenizerConfig

Log = Callable[[str], None]
CHECKPOINT_FORMAT = "gesticulator-rhythm"
CHECKPOINT_VERSION = 1
MODEL_FILE = "model.pt"
CARD_FILE = "model.json"
# EMA bookkeeping of the codebooks: needed to train, not to encode or decode.
_TRAINING_ONLY_BUFFERS = ("cluster_size", "embed_avg")


# -- configs ---------------------------------------------------------------------------------------
@dataclass
class StageConfig:
    steps: int = 1000
    batch_size: int = 32
    window: int = 64  # tokenizer: frames (multiple of 4); GPT: tokens (<= gpt.block_size)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # the cosine schedule ends at lr * min_lr_ratio
    weight_decay: float = 0.01
    warmup: int = 100
    grad_clip: float = 1.0
    log_every: int = 50
    checkpoint_every: int = 500


@dataclass
class TokenizerTrainConfig(StageConfig):
    velocity_weight: float = 1.0  # L1 on frame-to-frame differences: keeps decoded motion smooth
    time_share: float = 0.45  # share of max_minutes for the tokenizer stage


@dataclass
class GPTTrainConfig(StageConfig):
    anchor_prob: float = 0.5  # windows that get a forced-step anchor (teaches heading into splices)
    transcript_dropout: float = 0.25  # windows whose word columns are zeroed (works without transcript)


@dataclass
class RhythmTrainConfig:
    name: str = "rhythm"
    device: str = "cpu"  # cpu | cuda | auto
    # torch CPU threads. 1 by default: on a 2-core machine shared with other work, 2 threads made
    # steps 2-7x *slower* (OpenMP threads spin-wait on each other); raise it on an idle machine.
    threads: int = 1
    seed: int = 0
    max_minutes: float | None = None  # wall-clock budget of the whole run
    amp: bool = False  # bf16 autocast for the GPT on CUDA
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    tokenizer_train: TokenizerTrainConfig = field(default_factory=TokenizerTrainConfig)
    gpt: GPTConfig = field(default_factory=GPTConfig)
    gpt_train: GPTTrainConfig = field(default_factory=GPTTrainConfig)


def _from_dict(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise InputFileError(f"{where}: expected a mapping, got {type(data).__name__}", "fix the YAML")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputFileError(
            f"{where}: unknown setting(s) {', '.join(unknown)}", f"known settings: {', '.join(sorted(known))}"
        )
    values = {}
    for name, value in data.items():
        kind = hints.get(name)
        values[name] = _from_dict(kind, value, f"{where}.{name}") if dataclasses.is_dataclass(kind) else value
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise InputFileError(f"{where}: {e}", "fix the YAML") from e


def load_config(config: str | os.PathLike | dict | RhythmTrainConfig) -> RhythmTrainConfig:
    """A training config from a YAML path, a pipelines/ preset name ("rhythm_debug"), a dict or itself."""
    if isinstance(config, RhythmTrainConfig):
        return config
    if isinstance(config, dict):
        return _from_dict(RhythmTrainConfig, config, "config")
    path = Path(config)
    if not path.is_file() and path.suffix == "":
        from gesticulator.resources import data_dir

        path = data_dir("pipelines") / f"{path.name}.yaml"
    if not path.is_file():
        raise InputFileError(
            f"training config not found: {config}", "give a YAML path or a pipelines/ preset name"
        )
    from gesticulator.io.text import read_text

    try:
        data = yaml.safe_load(read_text(path, "training config")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())  # PyYAML's text spans lines
        raise InputFileError(f"{path}{where}: not valid YAML ({problem})", "fix the YAML syntax") from None
    return _from_dict(RhythmTrainConfig, data, path.name)


def config_dict(cfg: Any) -> dict:
    """A dataclass config as plain JSON/YAML types (tuples -> lists)."""
    return json.loads(json.dumps(asdict(cfg)))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GesticulatorError("config asks for device cuda but no CUDA GPU is available", "set device: cpu")
    return torch.device(name)


# -- checkpoints -----------------------------------------------------------------------------------
def _save(path: Path, payload: dict) -> None:
    from gesticulator.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _load(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
        raise InputFileError(
            f"checkpoint {path} is unreadable ({type(e).__name__})", "delete it or use resume=False"
        ) from e


def _check_resumable(state: dict, path: Path, arch: dict, data_hash: str, arch_key: str) -> None:
    if state.get("data_hash") != data_hash:
        raise GesticulatorError(
            f"{path} was trained on other data (hash {state.get('data_hash')}, now {data_hash})",
            "use a new run directory, or resume=False to start over",
        )
    if state.get(arch_key) != arch:
        raise GesticulatorError(
            f"{path} holds a model with another architecture than the config",
            "use a new run directory, or resume=False to start over",
        )


# -- schedule and logging --------------------------------------------------------------------------
def _lr(stage: StageConfig, step: int, progress: float) -> float:
    warm = min(1.0, (step + 1) / max(1, stage.warmup))
    floor = stage.lr * stage.min_lr_ratio
    return warm * (floor + (stage.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


class _Logger:
    def __init__(self, run_dir: Path, log: Log):
        self.path = run_dir / "train_log.jsonl"
        self.log = log

    def __call__(self, line: str, **record: Any) -> None:
        self.log(line)
        if record:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")


@dataclass
class _Stage:
    """The loop state of one training stage."""

    name: str
    cfg: StageConfig
    budget_s: float
    step: int = 0
    elapsed_s: float = 0.0

    def progress(self) -> float:
        return max(
            self.step / max(1, self.cfg.steps), self.elapsed_s / self.budget_s if self.budget_s > 0 else 1.0
        )

    def done(self) -> bool:
        return self.step >= self.cfg.steps or (self.budget_s < math.inf and self.elapsed_s >= self.budget_s)


def _run_stage(
    stage: _Stage,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[np.random.Generator], tuple[torch.Tensor, dict[str, float]]],
    save: Callable[[], None],
    seed: int,
    logger: _Logger,
) -> dict[str, float]:
    """The shared loop: schedule, step, clip, log, checkpoint; returns the last logged averages."""
    rng = np.random.default_rng([seed, stage.step])  # a resumed run does not replay old batches
    torch.manual_seed(seed * 1_000_003 + stage.step)
    model.train()
    sums: dict[str, float] = {}
    count, window_start = 0, time.perf_counter()
    averages: dict[str, float] = {}
    while not stage.done():
        t0 = time.perf_counter()
        lr = _lr(stage.cfg, stage.step, stage.progress())
        for group in optimizer.param_groups:
            group["lr"] = lr
        try:
            loss, terms = batch_loss(rng)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if stage.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), stage.cfg.grad_clip)
            optimizer.step()
        except KeyboardInterrupt:
            logger(f"[{stage.name}] interrupted at step {stage.step}; checkpoint saved, run again to resume")
            save()
            raise
        stage.step += 1
        stage.elapsed_s += time.perf_counter() - t0
        for k, v in {"loss": float(loss.detach()), **terms}.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        if stage.step % stage.cfg.log_every == 0 or stage.done():
            averages = {k: v / count for k, v in sums.items()}
            per_step = (time.perf_counter() - window_start) / count
            text = "  ".join(f"{k} {v:.4f}" for k, v in averages.items())
            logger(
                f"[{stage.name}] step {stage.step}/{stage.cfg.steps}  {text}  lr {lr:.2e}  "
                f"{per_step:.3f} s/step  {stage.elapsed_s / 60:.1f}/"
                + (f"{stage.budget_s / 60:.1f} min" if stage.budget_s < math.inf else "- min"),
                stage=stage.name,
                step=stage.step,
                lr=lr,
                seconds_per_step=per_step,
                elapsed_s=stage.elapsed_s,
                **averages,
            )
            sums, count, window_start = {}, 0, time.perf_counter()
        if stage.step % stage.cfg.checkpoint_every == 0 or stage.done():
            save()
    return averages


# -- stage 1: tokenizer ----------------------------------------------------------------------------
def _tokenizer_loss(
    model: MotionTokenizer, batch: dict[str, torch.Tensor], velocity_weight: float
) -> tuple[torch.Tensor, dict[str, float]]:
    out = model(batch)
    recon = vel = commit = torch.zeros(())
    used = []
    for part in out.values():
        target, pred = part["target"], part["recon"]
        recon = recon + F.smooth_l1_loss(pred, target, beta=0.1)
        vel = vel + F.l1_loss(pred[:, 1:] - pred[:, :-1], target[:, 1:] - target[:, :-1])
        commit = commit + part["commit"]
        used.append(part["codes"][..., 0].unique().numel())
    n = len(out)
    loss = (recon + velocity_weight * vel) / n + commit
    terms = {
        "recon": float(recon.detach()) / n,
        "vel": float(vel.detach()) / n,
        "commit": float(commit.detach()),
        "codes_used": float(np.mean(used)),  # distinct level-0 codes in the batch, per part
    }
    return loss, terms


def train_tokenizer(
    cfg: RhythmTrainConfig,
    dataset: RhythmDataset,
    run_dir: Path,
    budget_s: float,
    device: torch.device,
    logger: _Logger,
) -> tuple[MotionTokenizer, int, float]:
    """Train (or resume, or skip when finished) the tokenizer; returns (model, step, elapsed_s)."""
    tcfg = cfg.tokenizer_train
    if tcfg.window % 4:
        raise GesticulatorError(
            f"tokenizer_train.window must be a multiple of 4, got {tcfg.window}", "fix the config"
        )
    path = run_dir / "tokenizer.pt"
    arch = config_dict(cfg.tokenizer)
    model = MotionTokenizer(cfg.tokenizer)
    model.set_normalisation({p: tuple(map(torch.from_numpy, s)) for p, s in dataset.part_stats().items()})
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    stage = _Stage("tokenizer", tcfg, budget_s)
    state = _load(path)
    if state is not None:
        _check_resumable(state, path, arch, dataset.data_hash, "tokenizer_config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stage.step, stage.elapsed_s = int(state["step"]), float(state["elapsed_s"])
        logger(f"[tokenizer] resuming from step {stage.step} ({stage.elapsed_s / 60:.1f} min trained)")
    if stage.done():
        logger(f"[tokenizer] finished at step {stage.step}; skipping")
        return model.eval(), stage.step, stage.elapsed_s

    def save() -> None:
        _save(path, {
            "stage": "tokenizer", "step": stage.step, "elapsed_s": stage.elapsed_s, "data_hash": dataset.data_hash,
            "tokenizer_config": arch, "config": config_dict(cfg), "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
        })  # fmt: skip

    def batch_loss(rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        windows = dataset.motion_windows(rng, tcfg.batch_size, tcfg.window)
        batch = {p: torch.from_numpy(a).to(device) for p, a in windows.items()}
        return _tokenizer_loss(model, batch, tcfg.velocity_weight)

    params = sum(p.numel() for p in model.parameters())
    logger(f"[tokenizer] {params / 1e6:.2f} M parameters, training on {device}")
    _run_stage(stage, model, optimizer, batch_loss, save, cfg.seed, logger)
    return model.eval(), stage.step, stage.elapsed_s


@torch.no_grad()
def encode_dataset(
    tokenizer: MotionTokenizer, dataset: RhythmDataset, device: torch.device
) -> list[np.ndarray]:
    """Codes (N, parts, levels) of every take (each take encoded whole)."""
    tokenizer.eval()
    out = []
    for take in dataset.takes:
        parts = {p: torch.from_numpy(take.parts[p])[None].to(device) for p in PART_NAMES}
        out.append(tokenizer.encode(parts)[0].cpu().numpy())
    return out


def rest_codes(tokenizer: MotionTokenizer) -> np.ndarray:
    """(parts, levels) codes of the standing rest pose (the middle token of a held rest pose)."""
    device = next(tokenizer.parameters()).device
    rest = {p: torch.from_numpy(a)[None].to(device) for p, a in rest_parts(64).items()}
    return tokenizer.encode(rest)[0, 8].cpu().numpy()


# -- stage 2: GPT ----------------------------------------------------------------------------------
def _add_anchors(
    targets: np.ndarray, rng: np.random.Generator, prob: float, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random anchors as at generation: a forced step a, visible from the `horizon` steps before it."""
    batch, window, parts, _ = targets.shape
    codes = np.zeros((batch, window, parts), dtype=np.int64)
    dist = np.zeros((batch, window), dtype=np.int64)
    for b in range(batch):
        if window < 2 or rng.random() >= prob:
            continue
        a = int(rng.integers(1, window))
        for t in range(max(0, a - horizon), a):
            codes[b, t] = targets[b, a, :, 0]
            dist[b, t] = a - t
    return codes, dist


def gpt_config_for(cfg: RhythmTrainConfig, dataset: RhythmDataset) -> GPTConfig:
    """The GPT config with the fields that follow from the tokenizer and the data filled in."""
    return dataclasses.replace(
        cfg.gpt,
        parts=len(cfg.tokenizer.parts),
        levels=cfg.tokenizer.levels,
        codebook_size=cfg.tokenizer.codebook_size,
        num_styles=max(cfg.gpt.num_styles, len(dataset.style_names)),
        audio_dim=FEATURE_DIM,
    )


def train_gpt(
    cfg: RhythmTrainConfig,
    dataset: RhythmDataset,
    codes: list[np.ndarray],
    tokenizer_step: int,
    run_dir: Path,
    budget_s: float,
    device: torch.device,
    logger: _Logger,
) -> tuple[RhythmGPT, int, float]:
    gcfg_train = cfg.gpt_train
    gcfg = gpt_config_for(cfg, dataset)
    if gcfg_train.window > gcfg.block_size:
        raise GesticulatorError(
            f"gpt_train.window ({gcfg_train.window}) is longer than gpt.block_size ({gcfg.block_size})",
            "fix the config",
        )
    path = run_dir / "gpt.pt"
    arch = config_dict(gcfg)
    model = RhythmGPT(gcfg)
    mean, std = dataset.feature_stats()
    model.set_audio_normalisation(torch.from_numpy(mean), torch.from_numpy(std))
    model.to(device)
    optimizer = _gpt_optimizer(model, gcfg_train)
    stage = _Stage("gpt", gcfg_train, budget_s)
    state = _load(path)
    if state is not None and state.get("tokenizer_step") != tokenizer_step:
        logger(
            f"[gpt] {path.name} was trained on codes of another tokenizer checkpoint; starting the GPT over"
        )
        state = None
    if state is not None:
        _check_resumable(state, path, arch, dataset.data_hash, "gpt_config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        stage.step, stage.elapsed_s = int(state["step"]), float(state["elapsed_s"])
        logger(f"[gpt] resuming from step {stage.step} ({stage.elapsed_s / 60:.1f} min trained)")
    if stage.done():
        logger(f"[gpt] finished at step {stage.step}; skipping")
        return model.eval(), stage.step, stage.elapsed_s

    def save() -> None:
        _save(path, {
            "stage": "gpt", "step": stage.step, "elapsed_s": stage.elapsed_s, "data_hash": dataset.data_hash,
            "gpt_config": arch, "config": config_dict(cfg), "tokenizer_step": tokenizer_step,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        })  # fmt: skip

    use_amp = cfg.amp and device.type == "cuda"

    def batch_loss(rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        w = dataset.token_windows(
            rng,
            codes,
            gcfg_train.batch_size,
            gcfg_train.window,
            gcfg.audio_margin,
            gcfg_train.transcript_dropout,
        )
        anchor_codes, anchor_dist = _add_anchors(
            w["targets"], rng, gcfg_train.anchor_prob, gcfg.anchor_horizon
        )
        tensors = [
            torch.from_numpy(a).to(device)
            for a in (w["prev"], w["audio"], w["style"], anchor_codes, anchor_dist, w["targets"])
        ]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            return model(*tensors)

    params = sum(p.numel() for p in model.parameters())
    logger(f"[gpt] {params / 1e6:.2f} M parameters, training on {device}")
    _run_stage(stage, model, optimizer, batch_loss, save, cfg.seed + 1, logger)
    return model.eval(), stage.step, stage.elapsed_s


def _gpt_optimizer(model: RhythmGPT, stage: StageConfig) -> torch.optim.Optimizer:
    """AdamW as in nanoGPT: weight decay on weight matrices and embeddings, not on biases or norms."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": stage.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=stage.lr, betas=(0.9, 0.95))


# -- the one entry point ---------------------------------------------------------------------------
@dataclass
class TrainResult:
    run_dir: Path
    model_dir: Path  # the exported inference checkpoint (RhythmModel.load(model_dir))
    tokenizer_step: int
    gpt_step: int
    minutes: float  # wall-clock of this call
    data_summary: str


def train_rhythm(
    config: str | os.PathLike | dict | RhythmTrainConfig,
    data_root: str | os.PathLike,
    run_dir: str | os.PathLike,
    *,
    resume: bool = True,
    log: Log | None = None,
    max_minutes: float | None = None,
) -> TrainResult:
    """Train tokenizer + GPT on a corpus folder (BEAT2 layout or BVH + wav) into `run_dir`.

    `resume=True` continues from the run directory's checkpoints; `resume=False` starts over
    (deleting them). `max_minutes` overrides the config's budget. Exports the inference
    checkpoint to `run_dir/model/` at the end.
    """
    start = time.perf_counter()
    cfg = load_config(config)
    if max_minutes is not None:
        cfg = dataclasses.replace(cfg, max_minutes=max_minutes)
    from gesticulator.io.atomic import ensure_folder

    run_dir = ensure_folder(run_dir, "run folder")
    log = log or (lambda line: print(line, flush=True))
    if not resume:
        for name in ("tokenizer.pt", "gpt.pt", "train_log.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
    logger = _Logger(run_dir, log)
    device = _device(cfg.device)
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)
    from gesticulator.io.atomic import write_text_atomic

    write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(config_dict(cfg), sort_keys=False))
    logger(
        f"training {cfg.name!r} in {run_dir} on {device}"
        + (f", budget {cfg.max_minutes:g} min" if cfg.max_minutes else "")
    )

    dataset = load_dataset(data_root, cfg.data, log=log)
    write_text_atomic(run_dir / "styles.json", json.dumps(dataset.style_names))
    budget = cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    prep_s = time.perf_counter() - start
    tok_budget = cfg.tokenizer_train.time_share * (budget - prep_s) if budget < math.inf else math.inf
    tokenizer, tok_step, tok_elapsed = train_tokenizer(cfg, dataset, run_dir, tok_budget, device, logger)

    t0 = time.perf_counter()
    codes = encode_dataset(tokenizer, dataset, device)
    encode_s = time.perf_counter() - t0
    usage = [len(np.unique(np.concatenate([c[:, p, 0] for c in codes]))) for p in range(codes[0].shape[1])]
    logger(
        f"[codes] {sum(len(c) for c in codes)} tokens encoded in {encode_s:.1f} s; level-0 codes used per part: {usage}"
    )
    # The GPT gets what is left: budget - data prep - tokenizer training - encoding - export margin.
    gpt_budget = budget - prep_s - tok_elapsed - encode_s - 20.0 if budget < math.inf else math.inf
    if gpt_budget <= 0:
        raise GesticulatorError(
            "no time left for the GPT within max_minutes", "raise max_minutes or lower time_share"
        )
    _, gpt_step, _ = train_gpt(cfg, dataset, codes, tok_step, run_dir, gpt_budget, device, logger)

    model_dir = export_checkpoint(run_dir, run_dir / "model")
    minutes = (time.perf_counter() - start) / 60
    logger(f"done in {minutes:.1f} min; inference checkpoint {model_dir}")
    return TrainResult(run_dir, model_dir, tok_step, gpt_step, minutes, dataset.summary())


# -- export ----------------------------------------------------------------------------------------
def _compact(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp16 weights without the codebooks' EMA training buffers; normalisation stats stay fp32."""
    out = {}
    for name, tensor in state.items():
        if name.rsplit(".", 1)[-1] in _TRAINING_ONLY_BUFFERS:
            continue
        keep_fp32 = name.endswith((".mean", ".std"))
        out[name] = (
            tensor.detach().cpu().half()
            if tensor.is_floating_point() and not keep_fp32
            else tensor.detach().cpu()
        )
    return out


def export_checkpoint(run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write the compact inference checkpoint (`model.pt`, fp16) and its card (`model.json`)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    tok_state, gpt_state = _load(run_dir / "tokenizer.pt"), _load(run_dir / "gpt.pt")
    if tok_state is None or gpt_state is None:
        raise InputFileError(
            f"{run_dir} has no finished training (tokenizer.pt and gpt.pt)", "run train_rhythm first"
        )
    tok_cfg = TokenizerConfig(**tok_state["tokenizer_config"])
    tokenizer = MotionTokenizer(tok_cfg)
    tokenizer.load_state_dict(tok_state["model"])
    tokenizer.eval()
    cfg = gpt_state["config"]
    card = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "name": cfg.get("name", "rhythm"),
        "feature_version": FEATURE_VERSION,
        "representation_version": REPRESENTATION_VERSION,
        "data_hash": gpt_state["data_hash"],
        "tokenizer_step": tok_state["step"],
        "gpt_step": gpt_state["step"],
        "training_minutes": round((tok_state["elapsed_s"] + gpt_state["elapsed_s"]) / 60, 2),
        "style_names": _style_names(run_dir),
        "rest_codes": rest_codes(tokenizer).tolist(),
        "tokenizer_config": tok_state["tokenizer_config"],
        "gpt_config": gpt_state["gpt_config"],
        "train_config": cfg,
    }
    payload = {**card, "tokenizer": _compact(tok_state["model"]), "gpt": _compact(gpt_state["model"])}
    from gesticulator.io.atomic import ensure_folder, write_text_atomic

    ensure_folder(out_dir, "export folder")
    _save(out_dir / MODEL_FILE, payload)
    card["size_mb"] = round((out_dir / MODEL_FILE).stat().st_size / 1e6, 2)
    card["parameters"] = {  # float values stored (weights, codebooks, normalisation stats)
        "tokenizer": sum(v.numel() for v in payload["tokenizer"].values() if v.is_floating_point()),
        "gpt": sum(v.numel() for v in payload["gpt"].values() if v.is_floating_point()),
    }
    write_text_atomic(out_dir / CARD_FILE, json.dumps(card, indent=2) + "\n")
    return out_dir


def _style_names(run_dir: Path) -> list[str]:
    """Style names of the run's data (styles.json, written by train_rhythm); default: one style."""
    meta = run_dir / "styles.json"
    if meta.is_file():
        return json.loads(meta.read_text())
    return ["default"]
