"""The tabletop pick-and-place scene, composed with MuJoCo's model-editing API.

The menagerie SO-101 (see ``robot_assets``) is loaded as the root ``mujoco.MjSpec``; we add a table whose
top is the plane z = 0 (the robot base sits on it at the origin), a free block, a bowl built from a disc
and a ring of wall boxes (a mocap body, so its position lives in ``MjData`` and is reset per episode),
two shadowless lights and the cameras named by the ``SceneConfig``.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

from libs.sim.scene_config import WORLD, SceneConfig, SceneConfigError
from scenes.so101.render_meshes import simplified_stl
from scenes.so101.robot_assets import menagerie_dir, robot_xml_path

#: Physics steps per 30 Hz control step. 8 × 4.17 ms keeps the menagerie's 5 ms-class timestep (its
#: gripper contacts are tuned for it) while dividing 1/30 s exactly.
PHYSICS_SUBSTEPS = 8
CONTROL_PERIOD_S = 1.0 / 30.0

BLOCK_BODY = "block"
BLOCK_JOINT = "block_joint"
BLOCK_GEOM = "block_geom"
BOWL_BODY = "bowl"
TABLE_GEOM = "table"
EE_SITE = "gripperframe"
#: Menagerie's own wrist camera; replaced by the SceneConfig's cameras.
_MENAGERIE_WRIST_CAMERA = "wrist_cam"

BOWL_FLOOR_THICKNESS_M = 0.004
BOWL_WALL_THICKNESS_M = 0.006
BOWL_WALL_SEGMENTS = 16
TABLE_HALF_SIZE_M = (0.45, 0.5, 0.02)
TABLE_CENTER_XY = (0.15, 0.0)

#: Smallest offscreen buffer, so the benchmark can render up to 640×480 from any scene.
_MIN_OFFSCREEN = (640, 480)


def build_robot_spec() -> mujoco.MjSpec:
    """The bare arm (no scene), e.g. for inverse kinematics."""
    spec = mujoco.MjSpec.from_file(str(robot_xml_path()))
    return spec


def build_scene_spec(config: SceneConfig | None = None) -> mujoco.MjSpec:
    """The full scene for ``config`` (default cameras and objects when None)."""
    config = config or SceneConfig()
    spec = build_robot_spec()
    spec.modelname = "so101_pick_place"
    _configure_physics(spec)
    _configure_visual(spec, config)
    if config.simplify_render_meshes:
        simplify_visual_meshes(spec, config.render_mesh_cluster_m)
    world = spec.worldbody
    _add_lights(world)
    _add_table(world, config)
    _add_block(world, config)
    _add_bowl(world, config)
    _add_cameras(spec, config)
    return spec


def compile_scene(config: SceneConfig | None = None) -> mujoco.MjModel:
    return build_scene_spec(config).compile()


def _configure_physics(spec: mujoco.MjSpec) -> None:
    spec.option.timestep = CONTROL_PERIOD_S / PHYSICS_SUBSTEPS
    # NoSlip removes the slow creep of a block squeezed between the soft jaw contacts (so101-nexus uses
    # the same 3 iterations on CPU for its pick tasks).
    spec.option.noslip_iterations = 3


def _configure_visual(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    visual = spec.visual
    # Multisampling and shadows cost most of a CPU render and add nothing a policy needs.
    visual.quality.offsamples = 0
    visual.quality.shadowsize = 0
    widths = [camera.width for camera in config.cameras] + [_MIN_OFFSCREEN[0]]
    heights = [camera.height for camera in config.cameras] + [_MIN_OFFSCREEN[1]]
    visual.global_.offwidth = max(widths)
    visual.global_.offheight = max(heights)
    visual.headlight.ambient = [0.35, 0.35, 0.35]
    visual.headlight.diffuse = [0.3, 0.3, 0.3]
    visual.headlight.specular = [0.0, 0.0, 0.0]
    # Depth images are metric only while the clip planes bracket the scene; 1 cm–3 m covers it.
    visual.map.znear = 0.01
    visual.map.zfar = 3.0


def simplify_visual_meshes(spec: mujoco.MjSpec, cell_size_m: float) -> list[str]:
    """Replace every display-only mesh by its vertex-clustered copy; returns the replaced mesh names.

    A mesh qualifies when all geoms using it neither collide nor carry an explicit mass, so contacts
    and inertias are exactly the original model's.
    """
    users: dict[str, list[mujoco.MjsGeom]] = {}
    for geom in spec.geoms:
        if geom.type == mujoco.mjtGeom.mjGEOM_MESH:
            users.setdefault(geom.meshname, []).append(geom)
    mesh_dir = menagerie_dir() / spec.meshdir
    replaced = []
    for mesh in spec.meshes:
        geoms = users.get(mesh.name, [])
        display_only = geoms and all(
            g.contype == 0 and g.conaffinity == 0 and math.isnan(g.mass) for g in geoms
        )
        if not display_only or not mesh.file.lower().endswith(".stl"):
            continue
        vertices, faces = simplified_stl(str(mesh_dir / mesh.file), float(cell_size_m))
        mesh.file = ""
        mesh.uservert = vertices.reshape(-1).tolist()
        mesh.userface = faces.reshape(-1).tolist()
        replaced.append(mesh.name)
    return replaced


def _add_lights(world: mujoco.MjsBody) -> None:
    world.add_light(
        name="key", pos=[0.6, 0.4, 1.5], dir=[-0.35, -0.25, -0.9], diffuse=[0.6, 0.6, 0.6], castshadow=False
    )
    world.add_light(
        name="fill", pos=[0.0, 0.0, 2.0], dir=[0.0, 0.0, -1.0], diffuse=[0.3, 0.3, 0.3], castshadow=False
    )


def _add_table(world: mujoco.MjsBody, config: SceneConfig) -> None:
    half_x, half_y, half_z = TABLE_HALF_SIZE_M
    world.add_geom(
        name=TABLE_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[half_x, half_y, half_z],
        pos=[TABLE_CENTER_XY[0], TABLE_CENTER_XY[1], -half_z],
        rgba=list(config.table_rgba),
        friction=[1.0, 0.005, 0.0001],
    )


def _add_block(world: mujoco.MjsBody, config: SceneConfig) -> None:
    half = config.block_size_m / 2
    block = world.add_body(name=BLOCK_BODY, pos=[0.2, 0.0, half])
    block.add_freejoint(name=BLOCK_JOINT)
    block.add_geom(
        name=BLOCK_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[half, half, half],
        mass=config.block_mass_kg,
        rgba=list(config.block_rgba),
        friction=[1.0, 0.005, 0.0001],
        condim=4,
    )


def bowl_floor_top_z() -> float:
    """Height of the bowl's inner floor above the table: where a block in the bowl rests."""
    return BOWL_FLOOR_THICKNESS_M


def _add_bowl(world: mujoco.MjsBody, config: SceneConfig) -> None:
    bowl = world.add_body(name=BOWL_BODY, pos=[0.2, 0.12, 0.0], mocap=True)
    inner = config.bowl_inner_radius_m
    wall_half_height = config.bowl_wall_height_m / 2
    rgba = list(config.bowl_rgba)
    bowl.add_geom(
        name="bowl_floor",
        type=mujoco.mjtGeom.mjGEOM_CYLINDER,
        size=[inner + BOWL_WALL_THICKNESS_M, BOWL_FLOOR_THICKNESS_M / 2, 0],
        pos=[0, 0, BOWL_FLOOR_THICKNESS_M / 2],
        rgba=rgba,
    )
    # A ring of boxes approximates the wall; each segment is long enough to close the gaps between them.
    ring_radius = inner + BOWL_WALL_THICKNESS_M / 2
    half_length = ring_radius * math.tan(math.pi / BOWL_WALL_SEGMENTS) + BOWL_WALL_THICKNESS_M / 2
    for index in range(BOWL_WALL_SEGMENTS):
        angle = 2 * math.pi * index / BOWL_WALL_SEGMENTS
        bowl.add_geom(
            name=f"bowl_wall_{index}",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[BOWL_WALL_THICKNESS_M / 2, half_length, wall_half_height],
            pos=[ring_radius * math.cos(angle), ring_radius * math.sin(angle), wall_half_height],
            quat=[math.cos(angle / 2), 0, 0, math.sin(angle / 2)],
            rgba=rgba,
        )


def _add_cameras(spec: mujoco.MjSpec, config: SceneConfig) -> None:
    menagerie_wrist = spec.camera(_MENAGERIE_WRIST_CAMERA)
    if menagerie_wrist is not None:
        spec.delete(menagerie_wrist)
    for camera in config.cameras:
        if camera.body == WORLD:
            parent = spec.worldbody
        else:
            parent = spec.body(camera.body)
            if parent is None:
                bodies = ", ".join(b.name for b in spec.bodies if b.name)
                raise SceneConfigError(
                    f"camera {camera.name!r} is attached to unknown body {camera.body!r}: use 'world' or one "
                    f"of {bodies}"
                )
        added = parent.add_camera(
            name=camera.name,
            pos=list(camera.position),
            quat=list(camera.quat),
            fovy=camera.fovy_deg,
        )
        added.resolution = np.array([camera.width, camera.height], dtype=np.float32)
