"""Audio in and out: decode any audio or video file to float32 samples, stream long files in
bounded memory, and write WAV files atomically.

Two decoders:
- soundfile (libsndfile) for the formats it reads natively and exactly (WAV, FLAC, OGG, AIFF, ...),
  resampled with soxr;
- the ffmpeg binary shipped by imageio-ffmpeg for everything else (MP3, M4A/AAC, Opus in WebM,
  the audio track of MP4/MOV/MKV videos), decoded straight to float32 at the target rate on a pipe.

Every problem a user can cause (missing, empty, not audio, corrupt, truncated, no samples) is an
`InputFileError` with a one-line message. Silence is *not* an error here: callers decide whether
to warn.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gesticulator.errors import ExportError, InputFileError, MissingDependencyError
from gesticulator.io.atomic import atomic_path

DEFAULT_SR = 16000
# Decoders hand out blocks of this many seconds; small enough that streaming an hour of 48 kHz
# stereo never holds more than a few MB, large enough that per-block overhead is negligible.
_BLOCK_SECONDS = 10.0
# libsndfile reads MP3 too, but ffmpeg handles encoder delay / gapless info, so word times from an
# MP3 line up with the WAV it was made from. Everything else libsndfile recognises stays with it.
_FFMPEG_PREFERRED_SF_FORMATS = {"MP3"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header (no full decode unless the header has no duration)."""

    path: Path
    duration: float  # seconds
    sample_rate: int
    channels: int
    format: str  # container, e.g. "WAV", "FLAC", "mp3", "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # sample format / codec, e.g. "PCM_16", "aac"
    backend: str  # "soundfile" or "ffmpeg"
    frames: int | None = None  # exact sample count when the header gives it


class AudioChunk(NamedTuple):
    """A window of a longer recording: `samples` starting `start` seconds into the file."""

    start: float
    samples: np.ndarray
    sample_rate: int

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / self.sample_rate

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


# -- public API ------------------------------------------------------------------------------------


def probe_audio(path: str | os.PathLike) -> AudioInfo:
    """Header facts about an audio/video file; raises InputFileError when it holds no usable audio."""
    p = _check_file(path)
    info = _probe_soundfile(p)
    if info is not None:
        return info
    return _probe_ffmpeg(p)


def audio_duration(path: str | os.PathLike) -> float:
    """Length in seconds (from the header when it has one, else by decoding in bounded memory)."""
    return probe_audio(path).duration


def load_audio(
    path: str | os.PathLike,
    sr: int = DEFAULT_SR,
    *,
    mono: bool = True,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode a whole file to float32 in [-1, 1] at `sr` Hz: shape (n,) if mono, else (n, channels).

    `max_seconds` stops decoding early (only that much is read). For hour-long files prefer
    `iter_audio_chunks`, which never holds more than one window.
    """
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    info = probe_audio(path)
    blocks = list(_iter_blocks(info, sr, mono=mono, max_seconds=max_seconds))
    channels = 1 if mono else info.channels
    if not blocks:
        samples = np.zeros((0,) if mono else (0, channels), dtype=np.float32)
    else:
        samples = np.concatenate(blocks, axis=0)
        del blocks  # an hour at 16 kHz is 230 MB: never hold it twice
    if len(samples) == 0:
        raise InputFileError(
            f"{info.path} contains no audio samples", "check the recording; it may have been cut off"
        )
    if max_seconds is None:
        _warn_if_cut_short(info, len(samples) / sr)
    return samples


class AudioWarning(UserWarning):
    """Audio that decodes, but not as its header says (a damaged or cut-off compressed file)."""


def _warn_if_cut_short(info: AudioInfo, decoded: float) -> None:
    """ffmpeg decodes a damaged or cut-off MP3/AAC/video as far as it can and exits 0: the audio
    is then shorter than its header announces. That is animated (every frame that is there is
    good audio), with a warning, rather than refused; a WAV whose data is cut off is refused
    (`_check_wav_not_truncated`), since libsndfile would read it silently."""
    announced = info.duration
    if info.backend != "ffmpeg" or announced <= 0:
        return
    if decoded < 0.9 * announced and announced - decoded > 0.5:
        import warnings

        warnings.warn(
            f"{info.path.name}: decoded {decoded:.2f} s of the {announced:.2f} s its header announces "
            f"(the file is damaged or cut off); using the {decoded:.2f} s that are there — "
            "re-export it to use all of it",
            AudioWarning,
            stacklevel=3,
        )


def iter_audio_chunks(
    path: str | os.PathLike,
    sr: int = DEFAULT_SR,
    chunk_seconds: float = 60.0,
    overlap_seconds: float = 5.0,
    *,
    mono: bool = True,
) -> Iterator[AudioChunk]:
    """Stream a file as overlapping windows of `chunk_seconds` (the last one may be shorter).

    Window k starts at k * (chunk_seconds - overlap_seconds). Memory stays at about one window
    whatever the file length: soundfile is read block by block and ffmpeg through a pipe.
    """
    if chunk_seconds <= 0 or overlap_seconds < 0 or overlap_seconds >= chunk_seconds:
        raise ValueError(
            f"need chunk_seconds > overlap_seconds >= 0, got chunk={chunk_seconds}, overlap={overlap_seconds}"
        )
    info = probe_audio(path)
    yielded = False
    decoded = 0.0
    for chunk in window_blocks(
        _iter_blocks(info, sr, mono=mono), sr, chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds
    ):
        yielded = True
        decoded = chunk.end
        yield chunk
    if not yielded:
        raise InputFileError(
            f"{info.path} contains no audio samples", "check the recording; it may have been cut off"
        )
    _warn_if_cut_short(info, decoded)


def window_blocks(
    blocks: Iterator[np.ndarray], sr: int, *, chunk_seconds: float, overlap_seconds: float
) -> Iterator[AudioChunk]:
    """Re-cut a stream of sample blocks into overlapping windows (shared by files and arrays)."""
    chunk_n = max(1, int(round(chunk_seconds * sr)))
    hop_n = max(1, chunk_n - int(round(overlap_seconds * sr)))
    pending: list[np.ndarray] = []
    pending_n = 0
    start_n = 0  # sample index of pending[0][0] in the whole stream
    emitted_end = 0  # first sample not yet covered by an emitted window

    for block in blocks:
        if len(block) == 0:
            continue
        pending.append(block)
        pending_n += len(block)
        while pending_n >= chunk_n:
            # A single pending array is used as is (a view), so one huge block is sliced, not
            # re-copied for every window.
            buf = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)
            yield AudioChunk(start_n / sr, buf[:chunk_n].copy(), sr)
            emitted_end = start_n + chunk_n
            rest = buf[hop_n:]
            start_n += hop_n
            pending, pending_n = [rest], len(rest)
    # The tail: only emit it when it holds samples no earlier window covered.
    if pending_n and start_n + pending_n > emitted_end:
        buf = pending[0] if len(pending) == 1 else np.concatenate(pending, axis=0)
        yield AudioChunk(start_n / sr, buf.copy(), sr)


def save_wav(path: str | os.PathLike, samples: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> Path:
    """Write samples ((n,) or (n, channels); float in [-1, 1] or int16) as a WAV, atomically."""
    import soundfile as sf

    data = np.asarray(samples)
    if data.ndim not in (1, 2) or data.shape[0] == 0:
        raise ValueError(f"save_wav needs (n,) or (n, channels) samples with n > 0, got shape {data.shape}")
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    if np.issubdtype(data.dtype, np.floating):
        # Out-of-range floats would wrap around in PCM; clip them (and silence NaNs) instead.
        data = np.clip(np.nan_to_num(data.astype(np.float32, copy=False)), -1.0, 1.0)
    elif data.dtype != np.int16:
        raise ValueError(f"save_wav takes float or int16 samples, got {data.dtype}")
    with atomic_path(path) as tmp:
        try:
            # The temp name ends in .tmp, so the format must be named explicitly.
            sf.write(str(tmp), data, int(sr), format="WAV", subtype=subtype)
        except OSError as e:
            raise ExportError(f"cannot write {path}: {e}", "free disk space or choose another folder") from e
    return Path(path)


# -- validation ------------------------------------------------------------------------------------


def _check_file(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputFileError(f"audio file not found: {p}", "check the path")
    if p.is_dir():
        raise InputFileError(f"{p} is a folder, not an audio file", "pass the path of a .wav/.mp3/... file")
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as e:
        raise InputFileError(f"cannot read {p}: {e.strerror}", "check the file's permissions") from e
    if size == 0:
        raise InputFileError(f"{p} is empty (0 bytes)", "re-export or re-record the audio")
    return p


def _no_samples(p: Path) -> InputFileError:
    return InputFileError(f"{p} contains no audio samples", "check the recording; it may have been cut off")


# -- soundfile backend -----------------------------------------------------------------------------


def _looks_like_mpeg_audio(p: Path) -> bool:
    """MP3 (an ID3 tag or an MPEG frame sync) or ADTS AAC: ffmpeg's job. libsndfile would read an
    MP3 too, but its mpg123 prints warnings ("Xing stream size off ...") straight onto stderr,
    past every one-line message, and ffmpeg handles encoder delay better anyway."""
    with open(p, "rb") as f:
        head = f.read(3)
    return head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _probe_soundfile(p: Path) -> AudioInfo | None:
    """Info via libsndfile, or None when libsndfile does not recognise the file (try ffmpeg)."""
    import soundfile as sf

    if p.suffix.lower() in (".mp3", ".aac", ".m4a", ".mp4", ".mov") or _looks_like_mpeg_audio(p):
        return None
    try:
        info = sf.info(str(p))
    except sf.LibsndfileError:
        return None  # unknown or damaged: ffmpeg decides, and words the error if it fails too
    if info.format in _FFMPEG_PREFERRED_SF_FORMATS:
        return None
    if info.format in ("WAV", "WAVEX"):
        _check_wav_not_truncated(p)  # first: "truncated" says more than "no samples"
    if info.frames <= 0 or info.samplerate <= 0:
        raise _no_samples(p)
    return AudioInfo(
        path=p,
        duration=info.frames / info.samplerate,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        format=info.format,
        codec=info.subtype,
        backend="soundfile",
        frames=int(info.frames),
    )


def _check_wav_not_truncated(p: Path) -> None:
    """libsndfile silently reads a cut-off WAV up to where the bytes end; we refuse it instead,
    since half a recording would give half a transcript with no hint why."""
    with open(p, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return  # not plain RIFF (e.g. W64 labelled WAV): trust libsndfile
        if head[:4] == b"RF64":
            return  # 64-bit sizes live in a ds64 chunk; libsndfile checks those itself
        file_size = p.stat().st_size
        pos = 12
        while pos + 8 <= file_size:
            f.seek(pos)
            chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
            if chunk_id == b"data":
                # 0 and 0xFFFFFFFF are the "size unknown" markers streaming writers leave behind.
                if chunk_size in (0, 0xFFFFFFFF):
                    return
                available = file_size - (pos + 8)
                # A few bytes of slack: some writers round the size up to a frame or word.
                if chunk_size > available + 16:
                    raise InputFileError(
                        f"{p} is truncated: only {available / chunk_size:.0%} of the audio its header "
                        f"announces is present ({available} of {chunk_size} bytes)",
                        "re-export it, or rewrite the header with `ffmpeg -i in.wav fixed.wav` to keep what is there",
                    )
                return
            pos += 8 + chunk_size + (chunk_size & 1)  # chunks are word-aligned


def _iter_soundfile(info: AudioInfo, sr: int, mono: bool, max_seconds: float | None) -> Iterator[np.ndarray]:
    import soundfile as sf
    import soxr

    block_n = max(1024, int(_BLOCK_SECONDS * info.sample_rate))
    limit = None if max_seconds is None else int(round(max_seconds * info.sample_rate))
    out_channels = 1 if mono else info.channels
    # A streaming resampler keeps its filter state across blocks, so block edges leave no clicks
    # and the output is sample-identical to resampling the whole file at once.
    stream = (
        None if info.sample_rate == sr else soxr.ResampleStream(info.sample_rate, sr, out_channels, "float32")
    )
    read = 0
    try:
        with sf.SoundFile(str(info.path)) as f:
            while limit is None or read < limit:
                n = block_n if limit is None else min(block_n, limit - read)
                block = f.read(n, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                read += len(block)
                block = block.mean(axis=1) if mono else block
                if stream is not None:
                    block = stream.resample_chunk(block, last=False)
                yield _clean(block)
            if stream is not None:
                tail = stream.resample_chunk(
                    np.zeros((0,) if mono else (0, out_channels), np.float32), last=True
                )
                if len(tail):
                    yield _clean(tail)
    except sf.LibsndfileError as e:
        reason = re.sub(r"^Error\s*:\s*", "", str(e.error_string)).strip().rstrip(".")
        raise InputFileError(
            f"cannot decode {info.path}: {reason} (the file is damaged or cut off)",
            f"re-export it, or keep what is readable with `ffmpeg -i {info.path.name} fixed.wav`",
        ) from e


def _clean(block: np.ndarray) -> np.ndarray:
    """float32, finite: a NaN from a corrupt float WAV would poison every feature downstream."""
    block = np.asarray(block, dtype=np.float32)
    if not np.all(np.isfinite(block)):
        block = np.nan_to_num(block, nan=0.0, posinf=1.0, neginf=-1.0)
    return block


# -- ffmpeg backend --------------------------------------------------------------------------------


def _ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise MissingDependencyError(
            "decoding this audio format needs ffmpeg",
            "pip install imageio-ffmpeg (or convert the file to WAV)",
        ) from e
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as e:
        raise MissingDependencyError(
            f"ffmpeg is not available: {e}", "pip install --force-reinstall imageio-ffmpeg"
        ) from e


_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_AUDIO_STREAM_RE = re.compile(r"Stream #\S+.*?: Audio: ([^,\s]+)[^,]*,\s*(\d+) Hz,\s*([^,]+)")
_INPUT_FORMAT_RE = re.compile(r"Input #0, ([^,]+(?:,[^,\s]+)*), from")
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "quad": 4,
    "4.0": 4,
    "5.0": 5,
    "5.1": 6,
    "6.1": 7,
    "7.1": 8,
}


def _probe_ffmpeg(p: Path) -> AudioInfo:
    exe = _ffmpeg_exe()
    # `ffmpeg -i` with no output prints the container and stream summary on stderr (and exits 1).
    proc = subprocess.run(
        [exe, "-hide_banner", "-nostdin", "-i", str(p)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    log = proc.stderr
    stream = _AUDIO_STREAM_RE.search(log)
    if "Input #0" not in log and "moov atom not found" in log:
        # An MP4/MOV/M4A keeps its index (the moov atom) at the end: a cut-off download has none.
        raise InputFileError(
            f"{p} is cut off: its MP4 index (moov atom) is missing, so no audio can be found",
            "download or export it again (nothing before the cut can be recovered without the index)",
        )
    if "Input #0" not in log:
        reason = _ffmpeg_reason(log)
        raise InputFileError(
            f"{p} is not a readable audio file ({reason})",
            "pass a WAV, FLAC, OGG, MP3, M4A or a video with an audio track",
        )
    if stream is None:
        raise InputFileError(
            f"{p} has no audio stream", "pass a WAV, FLAC, OGG, MP3, M4A or a video with an audio track"
        )
    codec, rate, layout = stream.group(1), int(stream.group(2)), stream.group(3).strip()
    fmt = m.group(1) if (m := _INPUT_FORMAT_RE.search(log)) else "unknown"
    duration = None
    if m := _DURATION_RE.search(log):
        h, mnt, s = m.groups()
        duration = int(h) * 3600 + int(mnt) * 60 + float(s)
    info = AudioInfo(
        path=p,
        duration=duration or 0.0,
        sample_rate=rate,
        channels=_layout_channels(layout),
        format=fmt,
        codec=codec,
        backend="ffmpeg",
    )
    if not duration:
        # Streams without a duration in the header (raw ADTS, some pipes): count by decoding.
        n = sum(len(b) for b in _iter_ffmpeg(info, DEFAULT_SR, mono=True, max_seconds=None))
        if n == 0:
            raise _no_samples(p)
        info = AudioInfo(**{**info.__dict__, "duration": n / DEFAULT_SR})
    return info


def _layout_channels(layout: str) -> int:
    layout = layout.split("(")[0].strip()
    if layout in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[layout]
    if m := re.match(r"(\d+) channels", layout):
        return int(m.group(1))
    return 2  # unknown layouts are rare; ffmpeg would downmix for mono decoding anyway


def _ffmpeg_reason(log: str) -> str:
    """The most telling line of an ffmpeg error log, trimmed to fit in a one-line message."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "Error opening input" in ln or "Invalid data" in ln or "moov atom" in ln:
            ln = re.sub(r"^\[[^\]]*\]\s*", "", ln)
            return "ffmpeg: " + re.sub(r"^Error opening input files?:\s*", "", ln)[:160]
    return re.sub(r"^\[[^\]]*\]\s*", "", lines[-1])[:160] if lines else "ffmpeg could not read it"


def _iter_ffmpeg(info: AudioInfo, sr: int, mono: bool, max_seconds: float | None) -> Iterator[np.ndarray]:
    exe = _ffmpeg_exe()
    channels = 1 if mono else info.channels
    cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(info.path), "-vn", "-sn", "-dn"]
    if max_seconds is not None:
        cmd += ["-t", f"{max_seconds:.6f}"]
    # Decode to float32 (no 16-bit requantisation) at the target rate, straight onto the pipe.
    cmd += ["-ac", str(channels), "-ar", str(sr), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"]
    frame_bytes = 4 * channels
    block_bytes = int(_BLOCK_SECONDS * sr) * frame_bytes
    # stderr goes to a temp file, not a pipe: an unread stderr pipe can fill and deadlock ffmpeg.
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        carry = b""
        try:
            while True:
                data = proc.stdout.read(block_bytes)
                if not data:
                    break
                data = carry + data
                usable = len(data) - len(data) % frame_bytes
                carry = data[usable:]
                if usable:
                    block = np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
                    yield _clean(block if mono else block.reshape(-1, channels))
            rc = proc.wait()
        finally:
            if proc.poll() is None:  # the consumer stopped early (or raised): don't leave ffmpeg running
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if rc != 0:
            err.seek(0)
            reason = _ffmpeg_reason(err.read().decode("utf-8", "replace"))
            raise InputFileError(
                f"cannot decode {info.path}: {reason}", "the file looks corrupt; re-export it"
            )


def _iter_blocks(
    info: AudioInfo, sr: int, *, mono: bool = True, max_seconds: float | None = None
) -> Iterator[np.ndarray]:
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    if info.backend == "soundfile":
        return _iter_soundfile(info, sr, mono, max_seconds)
    return _iter_ffmpeg(info, sr, mono, max_seconds)
