from dataclasses import replace

import pytest

from libs.sim.scene_config import CameraConfig, SceneConfig, SceneConfigError, quat_looking_at


def test_round_trip_through_dict_and_file(tmp_path):
    scene = SceneConfig()
    assert SceneConfig.from_dict(scene.to_dict()) == scene
    path = scene.save(tmp_path / "meta" / "scene.json")
    assert SceneConfig.load(path) == scene
    assert scene.differences(SceneConfig.load(path)) == []


def test_differences_name_the_fov_mistake():
    trained = SceneConfig()
    overhead = replace(trained.camera("overhead"), fovy_deg=58.0)
    evaluated = replace(trained, cameras=(overhead, trained.camera("wrist")))
    lines = evaluated.differences(trained)
    assert lines == ["camera 'overhead' fovy_deg: 58 vs 52"]
    assert trained.differences(trained.to_dict()) == []


def test_differences_report_missing_cameras_size_and_depth():
    trained = SceneConfig()
    evaluated = trained.with_cameras(["overhead"]).with_image_size(240, 320)
    lines = evaluated.differences(trained)
    assert any("camera 'wrist': missing here" in line for line in lines)
    assert "camera 'overhead' height: 240 vs 96" in lines
    depth = replace(trained, cameras=(replace(trained.cameras[0], depth=True), trained.cameras[1]))
    assert depth.differences(trained) == ["camera 'overhead' depth: True vs False"]


def test_unknown_camera_names_the_available_ones():
    with pytest.raises(SceneConfigError, match=r"unknown camera 'top'.*overhead, wrist"):
        SceneConfig().camera("top")
    with pytest.raises(SceneConfigError, match="unknown camera 'top'"):
        SceneConfig().with_cameras(["top"])


def test_bad_files_and_fields_get_one_line(tmp_path):
    with pytest.raises(SceneConfigError, match="does not exist"):
        SceneConfig.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SceneConfigError, match="not valid JSON"):
        SceneConfig.load(tmp_path / "bad.json")
    with pytest.raises(SceneConfigError, match="unknown scene config fields"):
        SceneConfig.from_dict({**SceneConfig().to_dict(), "lighting": 3})
    with pytest.raises(SceneConfigError, match="reserved for depth"):
        CameraConfig(name="top_depth", position=(0, 0, 1), quat=(1, 0, 0, 0), fovy_deg=50)


def test_look_at_points_the_camera_minus_z_at_the_target():
    import numpy as np

    quat = quat_looking_at((0.2, 0.0, 0.5), (0.2, 0.0, 0.0), up=(1, 0, 0))
    w, x, y, z = quat
    # Rotate the camera's -z axis into the world: it must point straight down.
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    assert np.allclose(rotation @ [0, 0, -1], [0, 0, -1], atol=1e-9)
