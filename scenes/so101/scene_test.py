from dataclasses import replace

import mujoco
import numpy as np
import pytest

from libs.sim.scene_config import CameraConfig, SceneConfig, SceneConfigError
from scenes.so101.render_meshes import cluster_vertices
from scenes.so101.robot_assets import menagerie_dir
from scenes.so101.scene import BLOCK_BODY, BOWL_BODY, EE_SITE, build_scene_spec


def test_the_arm_comes_from_the_installed_package_with_its_license():
    folder = menagerie_dir()
    assert (folder / "LICENSE").is_file() and (folder / "PROVENANCE.md").is_file()


def test_scene_has_objects_and_the_configured_cameras():
    scene = SceneConfig()
    model = build_scene_spec(scene).compile()
    for body in (BLOCK_BODY, BOWL_BODY):
        assert model.body(body).id >= 0
    assert model.site(EE_SITE).id >= 0
    names = [model.camera(i).name for i in range(model.ncam)]
    assert names == ["overhead", "wrist"]
    assert np.isclose(model.camera("overhead").fovy[0], 52.0)
    assert model.body(model.camera("wrist").bodyid[0]).name == "gripper"
    assert model.vis.quality.offsamples == 0


def test_simplified_render_meshes_keep_the_physics_identical():
    simple = build_scene_spec(SceneConfig()).compile()
    original = build_scene_spec(SceneConfig(simplify_render_meshes=False)).compile()
    assert simple.nmeshface < original.nmeshface / 3
    assert simple.ngeom == original.ngeom
    collides = original.geom_contype != 0
    assert np.array_equal(simple.geom_contype, original.geom_contype)
    for field in ("geom_size", "geom_pos", "geom_quat", "geom_friction"):
        assert np.allclose(getattr(simple, field)[collides], getattr(original, field)[collides]), field
    for field in ("body_mass", "body_inertia", "body_ipos"):
        assert np.allclose(getattr(simple, field), getattr(original, field)), field
    # Same physics: a few steps from the same state end in the same state.
    states = []
    for model in (simple, original):
        data = mujoco.MjData(model)
        data.ctrl[:6] = [0.3, -0.5, 0.5, 1.0, 0.2, 1.0]
        mujoco.mj_step(model, data, nstep=50)
        states.append(data.qpos.copy())
    assert np.allclose(states[0], states[1])


def test_vertex_clustering_merges_close_vertices_and_drops_collapsed_faces():
    vertices = np.array([[0, 0, 0], [0.0005, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    merged, kept = cluster_vertices(vertices, faces, cell_size=0.002)
    assert len(merged) == 3 and len(kept) == 1


def test_camera_on_an_unknown_body_names_the_bodies():
    bad = CameraConfig(name="hand", position=(0, 0, 0), quat=(1, 0, 0, 0), fovy_deg=50, body="hand")
    with pytest.raises(SceneConfigError, match=r"unknown body 'hand'.*gripper"):
        build_scene_spec(replace(SceneConfig(), cameras=(bad,)))
