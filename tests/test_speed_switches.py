"""train.to_static and train.amp: the switches GPU users turn on, run here on CPU through the real
tools/train.py. On CPU Paddle's autocast and GradScaler stay float32, and to_static compiles the same
computation, so with Paddle's own convolutions each must give the float32 dygraph run's checkpoint
bit for bit."""
import json

import numpy as np
import pytest
from conftest import assert_same_state, load_state, quick

from paddle_gan.gan.precision import FLOAT32, MixedPrecision, make_precision


def test_to_static_and_amp_runs_equal_the_float32_dygraph_run(tmp_path):
    paddle_conv = "train.conv=paddle"  # the reference path: bit for bit
    quick(tmp_path / "ref", "train.steps=6", paddle_conv)
    for name, switches in {"static_fp16": ["train.to_static=true", "train.amp=float16"],
                           "bf16": ["train.amp=bfloat16"]}.items():
        p = quick(tmp_path / name, "train.steps=6", paddle_conv, *switches)
        assert "done: step 6" in p.stdout
        for f in ("G.pdparams", "D.pdparams", "G.pdopt", "D.pdopt"):
            assert_same_state(tmp_path / name / "checkpoints" / "step_0000006" / f,
                              tmp_path / "ref" / "checkpoints" / "step_0000006" / f)
    state = json.loads((tmp_path / "static_fp16" / "checkpoints" / "step_0000006" / "state.json").read_text())
    assert state["amp"] == {}  # float16 on a CPU: float32, with no loss scaler
    # a resume with the switches turned off continues the same run
    p = quick(tmp_path / "static_fp16", "train.steps=8", "train.amp=", "train.to_static=false", "--resume")
    assert "train.amp: 'float16' -> ''" in p.stdout


def test_to_static_with_the_onednn_operator_follows_dygraph(tmp_path):
    """The custom operator inside a to_static program: same training up to float rounding (the
    static program sums some gradients in another order)."""
    for name, static in (("dygraph", "false"), ("static", "true")):
        quick(tmp_path / name, "train.steps=6", "train.conv=onednn", f"train.to_static={static}")
    for f in ("G.pdparams", "D.pdparams"):
        a = load_state(tmp_path / "dygraph" / "checkpoints" / "step_0000006" / f)
        b = load_state(tmp_path / "static" / "checkpoints" / "step_0000006" / f)
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-3, atol=1e-4, err_msg=f"{f} {k}")


class _Scaler:  # what a GradScaler in use on a GPU reports (its scale is a 1-element array)
    def __init__(self, scale):
        self.loaded, self.state = None, {"scale": np.array([scale], np.float32), "incr_count": 7,
                                         "use_dynamic_loss_scaling": True}

    def state_dict(self):
        return self.state

    def load_state_dict(self, state):
        self.loaded = state


@pytest.mark.filterwarnings("ignore:AmpScaler can only be enabled")  # Paddle disables GradScaler on CPU
def test_float16_loss_scales_go_through_state_json_and_back():
    amp = make_precision("float16", on_gpu=True)  # what a GPU run gets
    assert isinstance(amp, MixedPrecision) and make_precision("") is FLOAT32 and make_precision("float16") is FLOAT32
    amp.scalers = {"D": _Scaler(1024.0), "G": _Scaler(32768.0)}
    saved = json.loads(json.dumps(amp.state_dict()))  # state.json holds it
    fresh = MixedPrecision("float16")
    fresh.scalers = {"D": _Scaler(1.0), "G": _Scaler(1.0)}
    fresh.set_state_dict(saved)
    for k, scale in (("D", 1024.0), ("G", 32768.0)):
        loaded = fresh.scalers[k].loaded
        assert loaded["scale"][0] == scale and loaded["incr_count"] == 7 and loaded["use_dynamic_loss_scaling"]
    fresh.set_state_dict({})  # a checkpoint from a float32 run: scalers start fresh
