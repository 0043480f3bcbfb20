"""Cheaper display meshes for the arm: vertex clustering of its visual STL files.

The menagerie meshes are CAD exports (~170k vertices, ~350k triangles for the whole arm), far more
detail than a 128×96 camera can show, and on a CPU (Mesa llvmpipe) the triangle count dominates render
time. Vertex clustering snaps every vertex to a grid cell (default 2 mm), merges the vertices of a cell
at their mean and drops the triangles that collapse. It is crude but fast, needs only numpy, and at 2 mm
it is visually indistinguishable at the image sizes we train on. Only meshes used exclusively by
visual geoms (no collision, no mass) are replaced, so the physics is unchanged.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

_STL_HEADER_BYTES = 80
_STL_TRIANGLE = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


class MeshFormatError(ValueError):
    """A mesh file is not a binary STL we can simplify; the message names the fix."""


def read_binary_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and faces (F, 3) int32 of a binary STL, with duplicate vertices merged."""
    raw = Path(path).read_bytes()
    if len(raw) < _STL_HEADER_BYTES + 4:
        raise MeshFormatError(f"{path} is too short to be a binary STL: turn off simplify_render_meshes")
    count = int(np.frombuffer(raw, dtype="<u4", count=1, offset=_STL_HEADER_BYTES)[0])
    expected = _STL_HEADER_BYTES + 4 + count * _STL_TRIANGLE.itemsize
    if len(raw) != expected:
        raise MeshFormatError(
            f"{path} is not a binary STL ({len(raw)} bytes, expected {expected}): "
            "turn off simplify_render_meshes in the scene config"
        )
    triangles = np.frombuffer(raw, dtype=_STL_TRIANGLE, count=count, offset=_STL_HEADER_BYTES + 4)
    corners = triangles["vertices"].reshape(-1, 3).astype(np.float64)
    vertices, inverse = np.unique(corners, axis=0, return_inverse=True)
    return vertices, inverse.reshape(-1, 3).astype(np.int32)


def cluster_vertices(
    vertices: np.ndarray, faces: np.ndarray, cell_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering on a ``cell_size`` grid: merged vertices, faces without collapsed triangles."""
    cells = np.floor(vertices / cell_size).astype(np.int64)
    _, cluster_of_vertex, cluster_sizes = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    cluster_of_vertex = cluster_of_vertex.reshape(-1)
    merged = np.zeros((len(cluster_sizes), 3))
    np.add.at(merged, cluster_of_vertex, vertices)
    merged /= cluster_sizes[:, None]
    new_faces = cluster_of_vertex[faces]
    keep = (
        (new_faces[:, 0] != new_faces[:, 1])
        & (new_faces[:, 1] != new_faces[:, 2])
        & (new_faces[:, 0] != new_faces[:, 2])
    )
    new_faces = new_faces[keep]
    # Two triangles on the same three clusters (either winding) render the same surface twice.
    canonical = np.sort(new_faces, axis=1)
    _, first = np.unique(canonical, axis=0, return_index=True)
    new_faces = new_faces[np.sort(first)]
    used = np.unique(new_faces)
    remap = np.full(len(merged), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return merged[used], remap[new_faces].astype(np.int32)


@functools.lru_cache(maxsize=64)
def simplified_stl(path: str, cell_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Clustered (vertices, faces) of an STL file, cached per process (the arm is rebuilt per env)."""
    vertices, faces = read_binary_stl(Path(path))
    simple_vertices, simple_faces = cluster_vertices(vertices, faces, cell_size)
    simple_vertices.setflags(write=False)
    simple_faces.setflags(write=False)
    return simple_vertices, simple_faces
