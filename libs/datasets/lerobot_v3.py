"""LeRobot v3.0 datasets written and read without torch: pyarrow for parquet, av for video, numpy for stats.

The on-disk layout is LeRobot 0.6.1's (``lerobot.datasets``), so ``LeRobotDataset(repo_id, root=...)`` loads
what this module writes:

    meta/info.json                                 codebase_version "v3.0", features, fps, paths, totals
    meta/stats.json                                dataset statistics (see ``libs.datasets.stats``)
    meta/tasks.parquet                             task strings (pandas index "task") -> task_index
    meta/episodes/chunk-000/file-000.parquet       one row per episode: length, data/video file indices,
                                                   video from/to timestamps, per-episode stats/<key>/<stat>,
                                                   plus our own columns (``outcome``, ``seed``, ...)
    meta/scene.json                                the env's SceneConfig (ours; LeRobot ignores it)
    data/chunk-000/file-000.parquet                one row per frame, several episodes per file
    videos/<key>/chunk-000/file-000.mp4            one stream per camera, episodes back to back

Depth cameras are stored as LeRobot 0.6.1 declares depth maps, so ``LeRobotDatasetMetadata.depth_keys``
lists them and ``dataset_to_policy_features`` types them VISUAL: an ``image`` feature of shape (H, W, 1) with
``info: {"is_depth_map": true, "depth_unit": "mm"}``, each frame a lossless 16-bit greyscale PNG in the
parquet holding the depth in whole millimetres (metres = value / 1000; 0–65.535 m, 1 mm steps; depth is
rounded to the nearest millimetre when written). LeRobot reads it as a float32 (1, H, W) tensor and converts
it to its ``depth_output_unit`` (millimetres by default; the torch backend trains with metres, the env's
unit). Its stats are in the stored unit (mm) with shape (1, 1, 1), as LeRobot computes them; LeRobot
rescales them with the frames. This reader returns depth as float32 (N, H, W) metres and the writer takes
metres (H, W). LeRobot's other depth storage, HEVC video of depth quantised to 12 bits, loses precision and
needs a 12-bit HEVC encoder; the PNG costs about as much disk here (96×128 maps). Datasets written before
this layout kept depth as float32 (H, W) arrays (``info.modality == "depth"``), which LeRobot types as a
state: ``convert depth`` rewrites them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from libs.datasets import stats as stats_lib
from libs.datasets.video import (
    VideoFileWriter,
    choose_codec,
    concatenate_videos,
    count_video_frames,
    decode_frames,
    decode_png,
    decode_png16,
    encode_png,
    encode_png16,
    video_info,
)
from libs.errors import LabError

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNK_SIZE = 1000
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
SCENE_PATH = "meta/scene.json"
#: Each episode's initial block xy (written by the recorder; drawn over the sweep's --grid success map).
BLOCK_POSITIONS_PATH = "meta/block_positions.json"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE + ".parquet"

#: Columns LeRobot adds to every frame.
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
VISUAL_DTYPES = ("video", "image")
#: How depth maps are stored (see the module docstring): whole millimetres in 16-bit PNG images.
DEPTH_UNIT = "mm"
MM_PER_METRE = 1000.0
_DEPTH_MAX_MM = 65535


class DatasetError(LabError, ValueError):
    """A dataset is missing, malformed or misused; the message names the problem and the fix."""


# ----------------------------------------------------------------------------------------------- features
def vector_feature(names: Sequence[str], dtype: str = "float32") -> dict[str, Any]:
    return {"dtype": dtype, "shape": [len(names)], "names": list(names)}


def rgb_feature(height: int, width: int, use_video: bool = True) -> dict[str, Any]:
    return {
        "dtype": "video" if use_video else "image",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
    }


def depth_feature(height: int, width: int) -> dict[str, Any]:
    """A depth camera as LeRobot 0.6.1 declares one (see the module docstring for the encoding)."""
    return {
        "dtype": "image",
        "shape": [height, width, 1],
        "names": ["height", "width", "channels"],
        "info": {"is_depth_map": True, "depth_unit": DEPTH_UNIT},
    }


def is_depth_feature(feature: Mapping[str, Any]) -> bool:
    """A depth map as LeRobot recognises one (``is_depth_map``, or its legacy ``video.is_depth_map``)."""
    info = feature.get("info") or {}
    return feature.get("dtype") in VISUAL_DTYPES and bool(
        info.get("is_depth_map") or info.get("video.is_depth_map")
    )


def is_legacy_depth_feature(feature: Mapping[str, Any]) -> bool:
    """Depth as this lab stored it before: a float32 (H, W) array LeRobot takes for a state."""
    return (
        feature.get("dtype") not in VISUAL_DTYPES and (feature.get("info") or {}).get("modality") == "depth"
    )


def depth_to_mm(metres: np.ndarray) -> np.ndarray:
    """Depth in metres → the stored uint16 millimetres (rounded; clipped to 0–65.535 m, NaN → 0)."""
    millimetres = np.rint(np.nan_to_num(np.asarray(metres, dtype=np.float64)) * MM_PER_METRE)
    return np.clip(millimetres, 0, _DEPTH_MAX_MM).astype(np.uint16)


def depth_from_mm(millimetres: np.ndarray) -> np.ndarray:
    """Stored millimetres → float32 metres."""
    return (np.asarray(millimetres, dtype=np.float32) / np.float32(MM_PER_METRE)).astype(np.float32)


def _arrow_type(feature: Mapping[str, Any]) -> pa.DataType:
    dtype, shape = feature["dtype"], list(feature["shape"])
    if dtype == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    if dtype == "string":
        return pa.string()
    value_type = pa.from_numpy_dtype(np.dtype("bool" if dtype == "bool" else dtype))
    if shape == [1]:
        return value_type
    if len(shape) == 1:
        return pa.list_(value_type, shape[0])
    nested = value_type
    for _ in shape:
        nested = pa.list_(nested)
    return nested


def _hf_feature(feature: Mapping[str, Any]) -> dict[str, Any]:
    """The Hugging Face ``datasets`` type LeRobot declares for a feature (kept in parquet metadata)."""
    dtype, shape = feature["dtype"], list(feature["shape"])
    if dtype == "image":
        return {"_type": "Image"}
    if shape == [1]:
        return {"dtype": dtype, "_type": "Value"}
    if len(shape) == 1:
        return {"feature": {"dtype": dtype, "_type": "Value"}, "length": shape[0], "_type": "List"}
    return {"shape": shape, "dtype": dtype, "_type": f"Array{len(shape)}D"}


def _data_schema(features: Mapping[str, Mapping[str, Any]]) -> pa.Schema:
    stored = {key: feature for key, feature in features.items() if feature["dtype"] != "video"}
    hf_info = {"info": {"features": {key: _hf_feature(feature) for key, feature in stored.items()}}}
    fields = [pa.field(key, _arrow_type(feature)) for key, feature in stored.items()]
    return pa.schema(fields, metadata={"huggingface": json.dumps(hf_info)})


def _to_arrow(values: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    if pa.types.is_fixed_size_list(arrow_type):
        flat = pa.array(values.reshape(-1), type=arrow_type.value_type)
        return pa.FixedSizeListArray.from_arrays(flat, arrow_type.list_size)
    if pa.types.is_list(arrow_type):
        # Nested lists for 2-D+ arrays: build from the innermost level outwards with fixed offsets.
        array: pa.Array = pa.array(values.reshape(-1), type=_innermost(arrow_type))
        for size in reversed(values.shape[1:]):
            count = len(array) // size
            offsets = pa.array(np.arange(count + 1, dtype=np.int32) * size)
            array = pa.ListArray.from_arrays(offsets, array)
        return array
    return pa.array(values.reshape(-1), type=arrow_type)


def _innermost(arrow_type: pa.DataType) -> pa.DataType:
    while pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        arrow_type = arrow_type.value_type
    return arrow_type


def _column_to_numpy(column: pa.ChunkedArray | pa.Array, feature: Mapping[str, Any] | None) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if feature is not None and is_depth_feature(feature):
        return depth_from_mm(np.stack([decode_png16(item["bytes"]) for item in column.to_pylist()]))
    if feature is not None and feature["dtype"] == "image":
        return np.stack([decode_png(item["bytes"]) for item in column.to_pylist()])
    depth = 0
    values = column
    while pa.types.is_list(values.type) or pa.types.is_fixed_size_list(values.type):
        values = values.flatten()
        depth += 1
    if depth == 0:
        return column.to_numpy(zero_copy_only=False)
    if feature is not None and len(feature["shape"]) == depth:
        shape = [len(column), *feature["shape"]]
    else:
        shape = [len(column), -1]
    return values.to_numpy(zero_copy_only=False).reshape(shape)


# ------------------------------------------------------------------------------------------------- tasks
def _tasks_table(tasks: Sequence[str]) -> pa.Table:
    """``meta/tasks.parquet`` as pandas writes it: column task_index, index "task" (LeRobot reads it with
    ``pd.read_parquet`` and looks tasks up by that index)."""
    table = pa.table(
        {"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())}
    )
    pandas_metadata = {
        "index_columns": ["task"],
        "column_indexes": [
            {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
             "metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object",
             "metadata": None},
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.3.3",
    }  # fmt: skip
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_metadata)})


# ----------------------------------------------------------------------------------------------- helpers
def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=4))
    temporary.replace(path)


def episode_stats_columns(episode_stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """``stats/<feature>/<stat>`` values for one episodes-parquet row (nested lists, count as int64)."""
    row: dict[str, Any] = {}
    for key, feature_stats in episode_stats.items():
        for name in stats_lib.STAT_KEYS:
            if name in feature_stats:
                value = np.asarray(feature_stats[name])
                row[f"stats/{key}/{name}"] = value.astype(
                    np.int64 if name == "count" else np.float64
                ).tolist()
    return row


def compute_episode_stats(
    features: Mapping[str, Mapping[str, Any]],
    columns: Mapping[str, np.ndarray],
    visual_frames: Mapping[str, np.ndarray],
) -> dict[str, dict[str, np.ndarray]]:
    result: dict[str, dict[str, np.ndarray]] = {}
    for key, feature in features.items():
        if is_depth_feature(feature):
            # In the stored unit, as LeRobot computes and rescales them (module docstring).
            result[key] = stats_lib.depth_stats(depth_to_mm(visual_frames[key]))
        elif feature["dtype"] in VISUAL_DTYPES:
            result[key] = stats_lib.rgb_stats(visual_frames[key])
        elif feature["dtype"] == "string":
            continue
        elif is_legacy_depth_feature(feature):
            result[key] = stats_lib.depth_stats(columns[key])
        else:
            result[key] = stats_lib.vector_stats(columns[key])
    return result


# -------------------------------------------------------------------------------------------------- writer
@dataclass
class _EpisodeBuffer:
    columns: dict[str, list[Any]] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tasks)


class LeRobotV3Writer:
    """Writes a LeRobot v3.0 dataset episode by episode, each saved episode durable at once.

    ``features`` are the recorded features (LeRobot's dict: dtype/shape/names); the index columns are added.
    Frames are buffered per episode and only written by ``save_episode`` (``clear_episode`` drops them), so
    a recorder can decide to keep an episode after seeing its outcome. ``save_episode`` appends the episode
    as LeRobot does, by rewriting the current data file and each camera's current video (remuxed, the new
    episode encoded on its own) to a temporary name and ``os.replace``-ing it, then rewrites ``meta/``,
    ``info.json`` last: a process killed at any point leaves every saved episode readable, and
    ``resume=True`` continues such a dataset after its last committed episode (``info.json``'s count).
    ``finalize`` only checks that an episode was saved.
    """

    def __init__(
        self,
        root: str | Path,
        fps: int,
        features: Mapping[str, Mapping[str, Any]],
        robot_type: str | None = "so101",
        scene_config: Mapping[str, Any] | None = None,
        video_codec: str | None = None,
        overwrite: bool = False,
        chunks_size: int = DEFAULT_CHUNK_SIZE,
        data_files_size_in_mb: int = DEFAULT_DATA_FILE_SIZE_IN_MB,
        video_files_size_in_mb: int = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        resume: bool = False,
    ) -> None:
        self.root = Path(root)
        if self.root.exists() and any(self.root.iterdir()) and not resume:
            if not overwrite:
                raise DatasetError(
                    f"{self.root} already exists and is not empty: choose a new output directory"
                )
            shutil.rmtree(self.root)
        reserved = set(DEFAULT_FEATURES) & set(features)
        if reserved:
            raise DatasetError(
                f"features {sorted(reserved)} are added by the writer: remove them from `features`"
            )
        self.fps = int(fps)
        self.features: dict[str, dict[str, Any]] = {key: dict(value) for key, value in features.items()}
        self.features.update({key: dict(value) for key, value in DEFAULT_FEATURES.items()})
        self.robot_type = robot_type
        self.scene_config = dict(scene_config) if scene_config is not None else None
        self.chunks_size = chunks_size
        self.data_files_size_in_mb = data_files_size_in_mb
        self.video_files_size_in_mb = video_files_size_in_mb
        self.video_keys = [key for key, feature in self.features.items() if feature["dtype"] == "video"]
        self.codec = choose_codec(video_codec) if self.video_keys else None
        for key in self.video_keys:
            height, width, _ = self.features[key]["shape"]
            ours = {
                name: value
                for name, value in (self.features[key].get("info") or {}).items()
                if not name.startswith("video.") and name not in ("has_audio", "is_depth_map")
            }
            self.features[key]["info"] = {**video_info(self.codec or "", height, width, self.fps), **ours}
        self._schema = _data_schema(self.features)
        self._tasks: list[str] = []
        self._episode_rows: list[dict[str, Any]] = []
        self._episode_stats: list[dict[str, dict[str, np.ndarray]]] = []
        self._buffer = _EpisodeBuffer()
        self._total_frames = 0
        self._data_position = (0, 0)
        self._video_position = {key: (0, 0) for key in self.video_keys}
        #: Frames already in each camera's current video file (where the next episode starts).
        self._video_frames = dict.fromkeys(self.video_keys, 0)
        #: (temporary, final) files of the episode being saved, renamed into place when it is committed.
        self._staged: list[tuple[Path, Path]] = []
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "meta").mkdir(exist_ok=True)
        if resume:
            self._resume()

    # -- frames
    @property
    def num_episodes(self) -> int:
        return len(self._episode_rows)

    @property
    def episode_rows(self) -> list[dict[str, Any]]:
        """The episodes-parquet rows saved so far (after a resume, the committed ones first)."""
        return list(self._episode_rows)

    @property
    def buffered_frames(self) -> int:
        return len(self._buffer)

    def add_frame(self, frame: Mapping[str, Any]) -> None:
        """One time step: every recorded feature plus ``task`` (str)."""
        if "task" not in frame:
            raise DatasetError("frame has no 'task': pass the language prompt with every frame")
        for key, feature in self.features.items():
            if key in DEFAULT_FEATURES:
                continue
            if key not in frame:
                raise DatasetError(f"frame is missing feature {key!r}: the writer was created with it")
            value = np.asarray(frame[key])
            expected = tuple(feature["shape"])
            if feature["dtype"] not in VISUAL_DTYPES and expected == (1,):
                value = value.reshape(1)
            if is_depth_feature(feature):
                value = self._depth_frame(key, value, expected)
            elif value.shape != expected:
                raise DatasetError(f"feature {key!r} has shape {value.shape}, expected {expected}")
            elif feature["dtype"] in VISUAL_DTYPES and value.dtype != np.uint8:
                raise DatasetError(f"image {key!r} is {value.dtype}: images must be uint8 RGB")
            self._buffer.columns.setdefault(key, []).append(value)
        self._buffer.tasks.append(str(frame["task"]))

    @staticmethod
    def _depth_frame(key: str, value: np.ndarray, expected: tuple[int, ...]) -> np.ndarray:
        """A depth frame as float32 (H, W) metres (the env's (H, W) or LeRobot's (H, W, 1))."""
        if value.shape == expected:
            value = value[..., 0]
        if value.shape != expected[:2]:
            raise DatasetError(f"depth {key!r} has shape {value.shape}, expected {expected[:2]} (metres)")
        if not np.issubdtype(value.dtype, np.floating):
            raise DatasetError(f"depth {key!r} is {value.dtype}: pass depth as float metres")
        return value.astype(np.float32, copy=False)

    def buffered_episode(self) -> dict[str, np.ndarray]:
        """The frames added since the last save/clear, stacked per feature (e.g. for a keep filter)."""
        return {key: np.stack(values) for key, values in self._buffer.columns.items()}

    def clear_episode(self) -> None:
        """Forget the buffered frames (an episode that is not kept)."""
        self._buffer = _EpisodeBuffer()

    def save_episode(self, metadata: Mapping[str, Any] | None = None) -> int:
        """Write the buffered frames as one episode and commit it (class docstring); ``metadata`` becomes
        extra episodes-parquet columns (e.g. ``{"outcome": "success", "seed": 3}``). Returns its index."""
        length = len(self._buffer)
        if length == 0:
            raise DatasetError("save_episode() called with no frames: add frames first")
        episode_index = len(self._episode_rows)
        for task in self._buffer.tasks:
            if task not in self._tasks:
                self._tasks.append(task)
        columns, visual = self._episode_columns(episode_index, length)
        row: dict[str, Any] = {
            "episode_index": episode_index,
            "tasks": list(dict.fromkeys(self._buffer.tasks)),
            "length": length,
        }
        row.update(self._write_data(columns, visual))
        row["dataset_from_index"] = self._total_frames
        row["dataset_to_index"] = self._total_frames + length
        for key in self.video_keys:
            row.update(self._write_video(key, visual[key]))
        row.update(episode_stats_columns(compute_episode_stats(self.features, columns, visual)))
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        for key, value in (metadata or {}).items():
            if key in row:
                raise DatasetError(f"episode metadata key {key!r} clashes with a LeRobot column: rename it")
            row[key] = value
        self._episode_rows.append(row)
        # The stats as the episodes parquet keeps them, so a resumed dataset aggregates the same numbers.
        self._episode_stats.append(_stats_of_row(row))
        self._total_frames += length
        self.clear_episode()
        self._write_meta()
        return episode_index

    def _episode_columns(
        self, episode_index: int, length: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The buffered episode's parquet columns (with LeRobot's index columns) and camera frames."""
        task_index = {task: i for i, task in enumerate(self._tasks)}
        columns: dict[str, np.ndarray] = {}
        visual: dict[str, np.ndarray] = {}
        for key, feature in self.features.items():
            if key in DEFAULT_FEATURES:
                continue
            stacked = np.stack(self._buffer.columns[key])
            if feature["dtype"] in VISUAL_DTYPES:
                visual[key] = stacked
            else:
                columns[key] = stacked.astype(feature["dtype"], copy=False)
        frame_index = np.arange(length, dtype=np.int64)
        columns["timestamp"] = (frame_index / self.fps).astype(np.float32)
        columns["frame_index"] = frame_index
        columns["episode_index"] = np.full(length, episode_index, dtype=np.int64)
        columns["index"] = self._total_frames + frame_index
        columns["task_index"] = np.array([task_index[task] for task in self._buffer.tasks], dtype=np.int64)
        return columns, visual

    def _data_arrays(
        self, columns: Mapping[str, np.ndarray], visual: Mapping[str, np.ndarray]
    ) -> list[pa.Array]:
        arrays = []
        for schema_field in self._schema:
            feature = self.features[schema_field.name]
            if is_depth_feature(feature):
                millimetres = depth_to_mm(visual[schema_field.name])
                arrays.append(
                    pa.array(
                        [{"bytes": encode_png16(image), "path": None} for image in millimetres],
                        schema_field.type,
                    )
                )
            elif feature["dtype"] == "image":
                images = visual[schema_field.name]
                arrays.append(
                    pa.array(
                        [{"bytes": encode_png(image), "path": None} for image in images], schema_field.type
                    )
                )
            else:
                arrays.append(_to_arrow(columns[schema_field.name], schema_field.type))
        return arrays

    def _write_data(
        self, columns: Mapping[str, np.ndarray], visual: Mapping[str, np.ndarray]
    ) -> dict[str, int]:
        """Appends the episode's rows to the current data file (rewritten atomically)."""
        table = pa.Table.from_arrays(self._data_arrays(columns, visual), schema=self._schema)
        chunk_index, file_index = self._data_position
        path = self.root / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)
        if path.is_file():
            table = pa.concat_tables([pq.read_table(path, schema=self._schema), table])
        staged = path.with_name(path.name + ".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, staged, compression="snappy")
        self._staged.append((staged, path))
        if staged.stat().st_size >= self.data_files_size_in_mb * 1024**2:
            self._data_position = self._next_position(self._data_position)
        return {"data/chunk_index": chunk_index, "data/file_index": file_index}

    def _video_file(self, key: str, position: tuple[int, int]) -> Path:
        chunk_index, file_index = position
        return self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk_index, file_index=file_index)

    def _write_video(self, key: str, frames: np.ndarray) -> dict[str, Any]:
        """The episode encoded on its own, then appended to the camera's current file by a remux."""
        chunk_index, file_index = self._video_position[key]
        path = self._video_file(key, (chunk_index, file_index))
        episode_path = path.with_name(path.name + ".episode.tmp")
        height, width, _ = self.features[key]["shape"]
        writer = VideoFileWriter(episode_path, height, width, self.fps, self.codec or "")
        writer.write(frames)
        writer.close()
        from_frame = self._video_frames[key]
        staged = episode_path
        if from_frame > 0:
            staged = path.with_name(path.name + ".tmp")
            concatenate_videos([path, episode_path], staged)
            episode_path.unlink()
        self._staged.append((staged, path))
        self._video_frames[key] = from_frame + len(frames)
        if staged.stat().st_size >= self.video_files_size_in_mb * 1024**2:
            self._video_position[key] = self._next_position(self._video_position[key])
            self._video_frames[key] = 0
        return {
            f"videos/{key}/chunk_index": chunk_index,
            f"videos/{key}/file_index": file_index,
            f"videos/{key}/from_timestamp": from_frame / self.fps,
            f"videos/{key}/to_timestamp": (from_frame + len(frames)) / self.fps,
        }

    def _next_position(self, position: tuple[int, int]) -> tuple[int, int]:
        chunk_index, file_index = position
        if file_index + 1 >= self.chunks_size:
            return chunk_index + 1, 0
        return chunk_index, file_index + 1

    # -- metadata
    def _write_meta(self) -> None:
        """Commits the episode: ``meta/`` for the episodes saved so far is staged beside the episode's data
        and video files, then all are renamed into place in a burst, ``info.json`` last (``resume`` trusts
        its episode count), so a kill leaves the files disagreeing for no more than those renames."""
        episodes_path = self.root / EPISODES_PATH.format(chunk_index=0, file_index=0)
        staged_episodes = episodes_path.with_name(episodes_path.name + ".tmp")
        write_episodes_table(self.root, self._episode_rows, path=staged_episodes)
        self._staged.append((staged_episodes, episodes_path))
        staged_tasks = self.root / (TASKS_PATH + ".tmp")
        pq.write_table(_tasks_table(self._tasks), staged_tasks)
        self._staged.append((staged_tasks, self.root / TASKS_PATH))
        meta = {
            STATS_PATH: stats_lib.to_json(stats_lib.aggregate(self._episode_stats)),
            INFO_PATH: self._info(),
        }
        if self.scene_config is not None:
            meta[SCENE_PATH] = self.scene_config
        for relative in sorted(meta, key=lambda name: name == INFO_PATH):
            staged = self.root / (relative + ".staged")
            staged.write_text(json.dumps(meta[relative], indent=4))
            self._staged.append((staged, self.root / relative))
        for staged, final in self._staged:
            staged.replace(final)
        self._staged = []

    def finalize(self) -> Path:
        """Checks that an episode was saved (each is committed when saved); returns the dataset root."""
        if not self._episode_rows:
            raise DatasetError(f"no episode was saved in {self.root}: nothing to finalize")
        return self.root

    def _info(self) -> dict[str, Any]:
        return build_info(
            fps=self.fps,
            features=self.features,
            total_episodes=len(self._episode_rows),
            total_frames=self._total_frames,
            total_tasks=len(self._tasks),
            robot_type=self.robot_type,
            chunks_size=self.chunks_size,
            data_files_size_in_mb=self.data_files_size_in_mb,
            video_files_size_in_mb=self.video_files_size_in_mb,
        )

    # -- resume
    def _resume(self) -> None:
        """Continue after the last committed episode: what a killed writer left past it is cut away."""
        info_path = self.root / INFO_PATH
        if not info_path.is_file():  # killed before its first episode was committed: start afresh
            for name in ("data", "videos", "meta"):
                shutil.rmtree(self.root / name, ignore_errors=True)
            (self.root / "meta").mkdir()
            return
        info = json.loads(info_path.read_text())
        self._check_resumable(info)
        committed = int(info["total_episodes"])
        table = LeRobotV3Dataset(self.root).episodes_table
        rows = [row for row in table.to_pylist() if row["episode_index"] < committed]
        if len(rows) != committed:
            raise DatasetError(
                f"{self.root} lists {len(rows)} of its {committed} episodes in {EPISODES_DIR}: "
                "it cannot be resumed, record it again with --overwrite"
            )
        if table.num_rows > committed:  # columns only the uncommitted episode had go with it
            kept = [name for name in table.column_names if any(row[name] is not None for row in rows)]
            rows = [{name: row[name] for name in kept} for row in rows]
        self._episode_rows = rows
        self._episode_stats = [_stats_of_row(row) for row in self._episode_rows]
        self._tasks = list(dict.fromkeys(task for row in rows for task in row["tasks"]))
        self._total_frames = sum(int(row["length"]) for row in rows)
        self._restore_data_files()
        for key in self.video_keys:
            self._restore_video_files(key)
        for leftover in [*(self.root / "meta").rglob("*.tmp"), *(self.root / "meta").rglob("*.staged")]:
            leftover.unlink()

    def _check_resumable(self, info: Mapping[str, Any]) -> None:
        asked = json.loads(json.dumps(self._info()))
        differing = [name for name in ("fps", "features", "robot_type") if info.get(name) != asked.get(name)]
        scene_path = self.root / SCENE_PATH
        if self.scene_config is not None and scene_path.is_file():
            if json.loads(scene_path.read_text()) != json.loads(json.dumps(self.scene_config)):
                differing.append("scene")
        if differing:
            raise DatasetError(
                f"{self.root} was recorded with another {', '.join(differing)} than this command asks for: "
                "resume it with the options it was started with, or choose a new output directory"
            )

    def _restore_data_files(self) -> None:
        """The data files cut back to the committed rows; the position after the last one."""
        last = self._episode_rows[-1]
        position = (int(last["data/chunk_index"]), int(last["data/file_index"]))
        path = self.root / DATA_PATH.format(chunk_index=position[0], file_index=position[1])
        table = pq.read_table(path, schema=self._schema)
        committed = int(last["episode_index"])
        if pc.max(table.column("episode_index")).as_py() > committed:
            mask = pc.less_equal(table.column("episode_index"), pa.scalar(committed, pa.int64()))
            _write_parquet_atomic(table.filter(mask), path)
        _remove_after(self.root / "data", path, "*/*.parquet")
        self._data_position = position
        if path.stat().st_size >= self.data_files_size_in_mb * 1024**2:
            self._data_position = self._next_position(position)

    def _restore_video_files(self, key: str) -> None:
        """The camera's current file cut back to the committed episodes; where the next one starts."""
        last = self._episode_rows[-1]
        position = (int(last[f"videos/{key}/chunk_index"]), int(last[f"videos/{key}/file_index"]))
        path = self._video_file(key, position)
        frames = round(float(last[f"videos/{key}/to_timestamp"]) * self.fps)
        stored = count_video_frames(path)
        if stored < frames:
            raise DatasetError(
                f"{path} holds {stored} frames, its episodes {frames}: it cannot be resumed, record it again"
            )
        if stored > frames:
            cut = path.with_name(path.name + ".tmp")
            concatenate_videos([path], cut, end_timestamp=frames / self.fps)
            cut.replace(path)
        _remove_after(self.root / "videos" / key, path, "*/*.mp4")
        self._video_position[key], self._video_frames[key] = position, frames
        if path.stat().st_size >= self.video_files_size_in_mb * 1024**2:
            self._video_position[key], self._video_frames[key] = self._next_position(position), 0

    def __enter__(self) -> LeRobotV3Writer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if exc_type is None:
            self.finalize()


def _stats_of_row(row: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """An episode's stats from its ``stats/<feature>/<stat>`` columns."""
    result: dict[str, dict[str, np.ndarray]] = {}
    for name, value in row.items():
        if name.startswith("stats/") and value is not None:
            key, _, stat = name[len("stats/") :].rpartition("/")
            result.setdefault(key, {})[stat] = np.asarray(value)
    return result


def _write_parquet_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    pq.write_table(table, temporary, compression="snappy")
    temporary.replace(path)


def _remove_after(folder: Path, last: Path, pattern: str) -> None:
    """Files matching ``pattern`` under ``folder`` that sort after ``last`` (a killed writer's next file),
    and every temporary file it left."""
    for path in folder.glob(pattern):
        if path.relative_to(folder).as_posix() > last.relative_to(folder).as_posix():
            path.unlink()
    for path in folder.glob("*/*.tmp"):
        path.unlink()


def build_info(
    fps: int,
    features: Mapping[str, Mapping[str, Any]],
    total_episodes: int,
    total_frames: int,
    total_tasks: int,
    robot_type: str | None,
    chunks_size: int = DEFAULT_CHUNK_SIZE,
    data_files_size_in_mb: int = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: int = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
) -> dict[str, Any]:
    has_video = any(feature["dtype"] == "video" for feature in features.values())
    return {
        "codebase_version": CODEBASE_VERSION,
        "fps": fps,
        "features": {key: dict(value) for key, value in features.items()},
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "robot_type": robot_type,
        "splits": {"train": f"0:{total_episodes}"},
    }


def write_episodes_table(root: Path, rows: Sequence[Mapping[str, Any]], path: Path | None = None) -> None:
    """``meta/episodes/chunk-000/file-000.parquet`` (or ``path``) with LeRobot's column types."""
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, [])
    for row in rows:
        for key in columns:
            columns[key].append(row.get(key))
    arrays = {}
    for key, values in columns.items():
        if key.startswith("stats/"):
            arrays[key] = pa.array(values, type=_stats_list_type(values, integer=key.endswith("/count")))
        elif key.endswith("_timestamp"):
            arrays[key] = pa.array(values, type=pa.float64())
        elif key == "tasks":
            arrays[key] = pa.array(values, type=pa.list_(pa.string()))
        else:
            arrays[key] = pa.array(values)
    _write_parquet_atomic(pa.table(arrays), path or root / EPISODES_PATH.format(chunk_index=0, file_index=0))


def _stats_list_type(values: Sequence[Any], integer: bool) -> pa.DataType:
    sample = next((value for value in values if value is not None), [0.0])
    depth = 0
    while isinstance(sample, list):
        depth += 1
        sample = sample[0] if sample else 0.0
    nested: pa.DataType = pa.int64() if integer else pa.float64()
    for _ in range(depth):
        nested = pa.list_(nested)
    return nested


# -------------------------------------------------------------------------------------------------- reader
class LeRobotV3Dataset:
    """Reads a LeRobot v3.0 dataset from disk (ours or LeRobot's) with pyarrow and av."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_path = self.root / INFO_PATH
        if not info_path.is_file():
            raise DatasetError(
                f"{self.root} is not a LeRobot dataset ({INFO_PATH} is missing): check the path"
            )
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text())
        except json.JSONDecodeError as error:
            raise DatasetError(f"{info_path} is not valid JSON ({error}): restore it or re-record") from error
        version = self.info.get("codebase_version")
        if version != CODEBASE_VERSION:
            raise DatasetError(
                f"{self.root} is LeRobot format {version!r}, this reader needs {CODEBASE_VERSION!r}: "
                "convert it with lerobot's convert_dataset_v21_to_v30"
            )
        self._data_tables: dict[Path, pa.Table] = {}
        self._episodes_table: pa.Table | None = None

    # -- metadata
    @property
    def fps(self) -> int:
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        return self.info["features"]

    @property
    def num_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def video_keys(self) -> list[str]:
        return [key for key, feature in self.features.items() if feature["dtype"] == "video"]

    @property
    def image_keys(self) -> list[str]:
        return [key for key, feature in self.features.items() if feature["dtype"] == "image"]

    @property
    def camera_keys(self) -> list[str]:
        return [key for key, feature in self.features.items() if feature["dtype"] in VISUAL_DTYPES]

    @property
    def depth_keys(self) -> list[str]:
        return [key for key, feature in self.features.items() if is_depth_feature(feature)]

    @property
    def stats(self) -> stats_lib.Stats | None:
        path = self.root / STATS_PATH
        if not path.is_file():
            return None
        return stats_lib.from_json(json.loads(path.read_text()))

    @property
    def scene_config(self) -> dict[str, Any] | None:
        path = self.root / SCENE_PATH
        return json.loads(path.read_text()) if path.is_file() else None

    @property
    def tasks(self) -> list[str]:
        table = pq.read_table(self.root / TASKS_PATH)
        order = np.argsort(table.column("task_index").to_numpy())
        names = table.column("task").to_pylist()
        return [names[i] for i in order]

    @property
    def episodes_table(self) -> pa.Table:
        """Every episodes-parquet column, one row per episode, sorted by episode_index."""
        if self._episodes_table is None:
            paths = sorted((self.root / EPISODES_DIR).glob("*/*.parquet"))
            if not paths:
                raise DatasetError(
                    f"{self.root}/{EPISODES_DIR} has no parquet file: the dataset is incomplete"
                )
            table = pa.concat_tables([pq.read_table(path) for path in paths], promote_options="default")
            self._episodes_table = table.sort_by("episode_index")
        return self._episodes_table

    @property
    def episode_indices(self) -> list[int]:
        return [int(i) for i in self.episodes_table.column("episode_index").to_pylist()]

    def episode_metadata(self, episode_index: int) -> dict[str, Any]:
        """The episodes-parquet row of one episode without its per-episode stats columns."""
        table = self.episodes_table
        names = [name for name in table.column_names if not name.startswith("stats/")]
        row_number = self._row_of(episode_index)
        return {name: table.column(name)[row_number].as_py() for name in names}

    def episode_stats(self, episode_index: int) -> stats_lib.Stats:
        table = self.episodes_table
        row_number = self._row_of(episode_index)
        result: stats_lib.Stats = {}
        for name in table.column_names:
            if name.startswith("stats/"):
                key, _, stat = name[len("stats/") :].rpartition("/")
                value = table.column(name)[row_number].as_py()
                if value is not None:
                    result.setdefault(key, {})[stat] = np.asarray(value)
        return result

    @property
    def outcomes(self) -> dict[int, str | None]:
        """Episode index -> recorded outcome (None where the dataset does not record one)."""
        table = self.episodes_table
        indices = self.episode_indices
        if "outcome" not in table.column_names:
            return dict.fromkeys(indices)
        return dict(zip(indices, table.column("outcome").to_pylist(), strict=True))

    def _row_of(self, episode_index: int) -> int:
        indices = self.episode_indices
        if episode_index not in indices:
            raise DatasetError(
                f"episode {episode_index} is not in {self.root} ({len(indices)} episodes): pick one of "
                f"{indices[:5]}{'...' if len(indices) > 5 else ''}"
            )
        return indices.index(episode_index)

    # -- frames
    def _data_table(self, relative: str) -> pa.Table:
        path = self.root / relative
        if path not in self._data_tables:
            if not path.is_file():
                raise DatasetError(f"data file {path} is missing: the dataset is incomplete, re-record it")
            self._data_tables[path] = pq.read_table(path)
        return self._data_tables[path]

    def episode(self, episode_index: int, columns: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """All parquet columns of one episode (or only ``columns``) as numpy arrays, in frame order."""
        metadata = self.episode_metadata(episode_index)
        template = self.info.get("data_path") or DATA_PATH
        table = self._data_table(
            template.format(chunk_index=metadata["data/chunk_index"], file_index=metadata["data/file_index"])
        )
        mask = pc.equal(table.column("episode_index"), pa.scalar(episode_index, pa.int64()))
        selected = table.filter(mask)
        names = list(columns) if columns is not None else selected.column_names
        result = {name: _column_to_numpy(selected.column(name), self.features.get(name)) for name in names}
        if "frame_index" in selected.column_names:
            order = np.argsort(selected.column("frame_index").to_numpy(), kind="stable")
            result = {name: value[order] for name, value in result.items()}
        return result

    def all_frames(self, columns: Iterable[str]) -> dict[str, np.ndarray]:
        """Columns over the whole dataset, episode by episode (for stats and checks)."""
        parts = [self.episode(ep, columns) for ep in self.episode_indices]
        return {name: np.concatenate([part[name] for part in parts]) for name in columns}

    def video_path(self, episode_index: int, key: str) -> Path:
        metadata = self.episode_metadata(episode_index)
        template = self.info.get("video_path") or VIDEO_PATH
        return self.root / template.format(
            video_key=key,
            chunk_index=metadata[f"videos/{key}/chunk_index"],
            file_index=metadata[f"videos/{key}/file_index"],
        )

    @property
    def rgb_keys(self) -> list[str]:
        """Camera keys that hold colour images (``camera_keys`` without depth maps)."""
        return [key for key in self.camera_keys if not is_depth_feature(self.features[key])]

    def video_frames(self, episode_index: int, key: str) -> np.ndarray:
        """uint8 (N, H, W, 3) frames of one camera for one episode (video or image features); float32
        (N, H, W) metres for a depth camera."""
        feature = self.features.get(key)
        if feature is None or feature["dtype"] not in VISUAL_DTYPES:
            raise DatasetError(f"{key!r} is not a camera of {self.root}: use one of {self.camera_keys}")
        if feature["dtype"] == "image":
            return self.episode(episode_index, [key])[key]
        metadata = self.episode_metadata(episode_index)
        return decode_frames(
            self.video_path(episode_index, key),
            float(metadata[f"videos/{key}/from_timestamp"]),
            float(metadata[f"videos/{key}/to_timestamp"]),
        )

    def __repr__(self) -> str:
        return f"LeRobotV3Dataset({str(self.root)!r}, episodes={self.num_episodes}, frames={self.num_frames})"


def recompute_stats(
    dataset: LeRobotV3Dataset, progress: bool = False
) -> tuple[stats_lib.Stats, list[stats_lib.Stats]]:
    """Dataset and per-episode statistics recomputed from the stored frames (parquet + decoded video)."""
    per_episode: list[stats_lib.Stats] = []
    indices = dataset.episode_indices
    iterator: Iterable[int] = indices
    if progress:
        from tqdm import tqdm

        iterator = tqdm(indices, desc="stats", unit="episode")
    for episode_index in iterator:
        stored = [
            key
            for key, feature in dataset.features.items()
            if feature["dtype"] not in (*VISUAL_DTYPES, "string")
        ]
        columns = dataset.episode(episode_index, stored)
        visual = {key: dataset.video_frames(episode_index, key) for key in dataset.camera_keys}
        per_episode.append(compute_episode_stats(dataset.features, columns, visual))
    return stats_lib.aggregate(per_episode), per_episode
