import numpy as np

from components.video.arrow import render_arrow_of_time
from components.video.decode import read_all_frames
from components.video.flow import compute_flow
from components.video.motion import MOTION_CLASSES, render_clip


def test_render_is_seeded():
    a = render_clip("rotate_cw", size=32, num_frames=6, seed=5)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_clip("rotate_cw", size=32, num_frames=6, seed=5))
    assert not np.array_equal(a, render_clip("rotate_cw", size=32, num_frames=6, seed=6))


def _mean_flow(label, seed=0):
    f = compute_flow(render_clip(label, size=64, num_frames=6, seed=seed), "dis")[:, 12:-12, 12:-12]
    return f


def test_classes_are_defined_by_motion():
    fr, fl = _mean_flow("right_fast").mean((0, 1, 2)), _mean_flow("left_slow").mean((0, 1, 2))
    assert fr[0] > 2.0 and abs(fr[1]) < 0.5 and -2.0 < fl[0] < -0.5
    assert _mean_flow("down_slow").mean((0, 1, 2))[1] > 0.5
    # rotation: curl sign; zoom: divergence sign (image y axis points down)
    def curl_div(f):
        du_dy, du_dx = np.gradient(f[..., 0].mean(0))
        dv_dy, dv_dx = np.gradient(f[..., 1].mean(0))
        return (dv_dx - du_dy).mean(), (du_dx + dv_dy).mean()
    assert curl_div(_mean_flow("rotate_cw"))[0] > 0.02 > -0.02 > curl_div(_mean_flow("rotate_ccw"))[0]
    assert curl_div(_mean_flow("approach"))[1] > 0.01 > -0.01 > curl_div(_mean_flow("recede"))[1]


def test_single_frames_do_not_reveal_the_class():
    # per-frame statistics (brightness, contrast) are drawn independently of the class
    stats = {c: np.array([render_clip(c, size=32, num_frames=4, seed=s)[2].std() for s in range(6)])
             for c in ("right_fast", "approach", "rotate_ccw")}
    means = [v.mean() for v in stats.values()]
    spread = np.mean([v.std() for v in stats.values()])
    assert max(means) - min(means) < 2 * spread
    assert len(MOTION_CLASSES) == 12


def test_arrow_of_time_pairs(tmp_path, carphone_path):
    paths = render_arrow_of_time(str(tmp_path), [carphone_path], windows_per_source=2, clip_len=6, size=32,
                                 train_fraction=0.5)
    assert len(paths) == 4
    fwd = read_all_frames(str(tmp_path / "train" / "forward" / "carphone_pristine_000_forward.mp4"))
    bwd = read_all_frames(str(tmp_path / "train" / "backward" / "carphone_pristine_000_backward.mp4"))
    assert fwd.shape == bwd.shape == (6, 32, 32, 3)
    assert np.abs(fwd.astype(int) - bwd[::-1].astype(int)).mean() < 4
    assert np.abs(fwd.astype(int) - bwd.astype(int)).mean() > np.abs(fwd.astype(int) - bwd[::-1].astype(int)).mean()
