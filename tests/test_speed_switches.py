"""train.to_static and train.amp through the real tools/train.py, and what each precision mode
chooses where. With Paddle's own convolutions, to_static compiles the same computation and train.amp
has nothing to run in another precision on a CPU (Paddle's autocast and GradScaler stay float32), so
each must give the float32 dygraph run's checkpoint bit for bit; each mode says what it chose.
(bfloat16 on the oneDNN operator, on a CPU that has it: tests/test_fast_path.py.)"""
import json

import numpy as np
import pytest
from conftest import assert_same_state, load_state, quick

from paddle_gan.gan.precision import FLOAT32, PRECISIONS, CPUBFloat16, MixedPrecision, make_precision


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


@pytest.mark.filterwarnings("ignore:AmpScaler can only be enabled")
def test_each_precision_mode_chooses_by_device_and_says_so(monkeypatch):
    """Every registered mode on a GPU, and on CPUs with and without bfloat16 arithmetic: the policy it
    gives and the one line it says."""
    said = []
    for name in PRECISIONS:
        assert isinstance(make_precision(name, on_gpu=True), MixedPrecision if name else type(FLOAT32))
    monkeypatch.setenv("PADDLE_GAN_CPU_BF16", "none")
    assert make_precision("bfloat16", note=said.append) is FLOAT32 and "has no bfloat16 arithmetic" in said[-1]
    assert make_precision("float16", note=said.append) is FLOAT32 and said[-1] == "float32 (train.amp=float16 is for GPUs)"
    monkeypatch.setenv("PADDLE_GAN_CPU_BF16", "AMX")
    assert make_precision("bfloat16", onednn=False, note=said.append) is FLOAT32 and "Paddle's kernels" in said[-1]
    try:  # the operator's bfloat16 convolution checks out (or says why not) on this CPU
        chosen = make_precision("bfloat16", note=said.append)
    except Exception as e:  # the operator cannot be built here (no compiler): the precision is not what is tested
        pytest.skip(f"no oneDNN operator: {e}")
    assert isinstance(chosen, CPUBFloat16) == said[-1].startswith("bfloat16 convolutions on AMX")
