"""MP4 encoding/decoding of camera streams with PyAV, the way LeRobot 0.6.1 stores them.

LeRobot's default encoder is AV1 (``libsvtav1``, yuv420p, GOP 2, CRF 30, preset 12) and its decoders read any
codec FFmpeg can decode. We write h264 (``libx264``, GOP 2) first: through PyAV, SVT-AV1's multi-threaded
output occasionally reaches the muxer with a decreasing DTS when the machine is busy ("non monotonically
increasing dts", seen here after ~3,000 frames of a recording running beside other jobs, not reproducible
on an idle machine), which kills a recording midway. libsvtav1 stays available by name; mpeg4 is the last
resort. Several episodes share one file: each episode is a time range ``[from_timestamp,
to_timestamp)`` of it, frames at ``pts = frame_number / fps``.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from libs.errors import LabError

#: Encoder preference (see the module docstring for why LeRobot's AV1 default is not first).
CODEC_PREFERENCE: tuple[str, ...] = ("libx264", "libsvtav1", "mpeg4")
#: LeRobot 0.6.1's RGB encoder defaults (``lerobot.configs.video.RGBEncoderConfig``).
GOP_SIZE = 2
CRF = 30
SVTAV1_PRESET = 12
PIX_FMT = "yuv420p"


class VideoError(LabError, RuntimeError):
    """A video could not be written or read; the message names the file and the fix."""


def choose_codec(preferred: str | None = None) -> str:
    """The first encoder of ``CODEC_PREFERENCE`` (or ``preferred``) that this av build provides."""
    candidates = (preferred,) if preferred else CODEC_PREFERENCE
    for name in candidates:
        if name in av.codecs_available:
            return name
    raise VideoError(
        f"none of the video encoders {', '.join(candidates)} is available in PyAV {av.__version__}: "
        "install an av wheel built with libsvtav1 or libx264"
    )


def _encoder_options(codec: str) -> dict[str, str]:
    if codec == "libsvtav1":
        return {"g": str(GOP_SIZE), "crf": str(CRF), "preset": str(SVTAV1_PRESET)}
    if codec == "libx264":
        return {"g": str(GOP_SIZE), "crf": str(CRF - 7), "preset": "veryfast"}
    return {"g": str(GOP_SIZE), "qscale": "3"}


def video_info(codec: str, height: int, width: int, fps: int) -> dict[str, Any]:
    """The ``info`` block LeRobot keeps per video feature in ``meta/info.json``."""
    stream_codec = {"libsvtav1": "av1", "libx264": "h264"}.get(codec, codec)
    info: dict[str, Any] = {
        "video.height": height,
        "video.width": width,
        "video.codec": stream_codec,
        "video.pix_fmt": PIX_FMT,
        "video.fps": fps,
        "video.channels": 3,
        "has_audio": False,
        "video.g": GOP_SIZE,
        "video.crf": CRF,
    }
    if codec == "libsvtav1":
        info["video.preset"] = SVTAV1_PRESET
        info["video.fast_decode"] = 0
    info["video.video_backend"] = "pyav"
    info["video.extra_options"] = {}
    info["is_depth_map"] = False
    return info


class VideoFileWriter:
    """Appends uint8 RGB frames to one MP4 file at a constant frame rate."""

    def __init__(self, path: Path, height: int, width: int, fps: int, codec: str) -> None:
        if height % 2 or width % 2:
            raise VideoError(f"{path}: image size {height}x{width} must be even for {PIX_FMT} video")
        # SVT-AV1 prints its whole configuration on stderr unless told otherwise.
        os.environ.setdefault("SVT_LOG", "1")
        # FFmpeg's own level, not av.logging.set_level: that installs a Python log callback, and a threaded
        # decoder (h264's frame threads) logging through it while the main thread holds the GIL deadlocks.
        av.logging.set_libav_level(av.logging.ERROR)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fps = fps
        self.frames_written = 0
        # The format is named: a recording encodes each episode to a temporary name first (``.mp4.tmp``).
        self._container = av.open(str(path), mode="w", format="mp4")
        self._stream = self._container.add_stream(codec, rate=fps)
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = PIX_FMT
        self._stream.options = _encoder_options(codec)
        self._time_base = Fraction(1, fps)

    def write(self, frames: np.ndarray) -> None:
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames_written
            frame.time_base = self._time_base
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
            self.frames_written += 1

    @property
    def size_bytes(self) -> int:
        """Bytes on disk so far (the muxer creates the file with its first packet)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


def concatenate_videos(parts: list[Path], out: Path, end_timestamp: float | None = None) -> None:
    """``parts`` played back to back, remuxed into ``out`` without re-encoding (how LeRobot appends an
    episode's video to a file); with ``end_timestamp``, only the frames before it. Each part must start
    with a keyframe (every episode is encoded on its own) and share the first part's time base."""
    inputs = [av.open(str(path)) for path in parts]
    try:
        with av.open(str(out), mode="w", format="mp4") as output:
            template = inputs[0].streams.video[0]
            stream = output.add_stream_from_template(template)
            offset = 0
            for path, container in zip(parts, inputs, strict=True):
                source = container.streams.video[0]
                if source.time_base != template.time_base:
                    raise VideoError(f"{path} has time base {source.time_base}, not {template.time_base}")
                offset = _remux_packets(container, source, output, stream, offset, end_timestamp)
    except av.error.FFmpegError as error:
        if isinstance(error, OSError):  # a full disk is the caller's to report (the recorder says: --resume)
            raise
        raise VideoError(f"cannot remux {', '.join(map(str, parts))} ({error}): re-record them") from error
    finally:
        for container in inputs:
            container.close()


def _remux_packets(
    container: Any, source: Any, output: Any, stream: Any, offset: int, end_timestamp: float | None
) -> int:
    """Copies ``source``'s packets shifted by ``offset`` (time-base units) whose time is before
    ``end_timestamp``; returns the offset just after the last one copied (where the next part starts)."""
    end = offset
    for packet in container.demux(source):
        if packet.dts is None or packet.pts is None:  # the demuxer's empty flush packet
            continue
        time = float((packet.pts + offset) * source.time_base)
        if end_timestamp is not None and time >= end_timestamp - 1e-4:
            continue
        packet.pts += offset
        packet.dts += offset
        end = max(end, packet.pts + packet.duration)
        packet.stream = stream
        output.mux(packet)
    return end


def count_video_frames(path: Path) -> int:
    """Frames (packets) in an MP4's video stream, without decoding them."""
    with av.open(str(path)) as container:
        source = container.streams.video[0]
        return sum(1 for packet in container.demux(source) if packet.pts is not None)


def decode_frames(path: Path, from_timestamp: float = 0.0, to_timestamp: float | None = None) -> np.ndarray:
    """uint8 (N, H, W, 3) frames whose timestamps lie in ``[from_timestamp, to_timestamp)``."""
    if not path.is_file():
        raise VideoError(f"video file {path} is missing: re-record the dataset or restore the file")
    tolerance = 1e-4
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if from_timestamp > 0 and stream.time_base is not None:
                container.seek(int(from_timestamp / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                time = float(frame.time) if frame.time is not None else 0.0
                if time < from_timestamp - tolerance:
                    continue
                if to_timestamp is not None and time >= to_timestamp - tolerance:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, IndexError) as error:
        raise VideoError(
            f"video file {path} cannot be decoded ({error}): re-record or re-encode it"
        ) from error
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 H×W×3 image (LeRobot's ``image`` dtype stores PNG bytes in parquet)."""
    codec = av.CodecContext.create("png", "w")
    codec.width = image.shape[1]
    codec.height = image.shape[0]
    codec.pix_fmt = "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])


def decode_png(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data), format="png_pipe") as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def encode_png16(image: np.ndarray) -> bytes:
    """PNG bytes of a uint16 H×W single-channel image (16-bit greyscale, lossless).

    PIL opens it as mode ``I;16``, which LeRobot 0.6.1 turns into a float32 (1, H, W) tensor in the stored
    units (``lerobot.datasets.io_utils.pil_to_chw_tensor``): how it reads depth maps stored as images."""
    codec = av.CodecContext.create("png", "w")
    codec.width = image.shape[1]
    codec.height = image.shape[0]
    codec.pix_fmt = "gray16be"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image, dtype=np.uint16), format="gray16le")
    frame = frame.reformat(format="gray16be")
    return b"".join(bytes(packet) for packet in [*codec.encode(frame), *codec.encode(None)])


def decode_png16(data: bytes) -> np.ndarray:
    """uint16 H×W values of a 16-bit greyscale PNG (``encode_png16``)."""
    with av.open(io.BytesIO(data), format="png_pipe") as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="gray16le")
