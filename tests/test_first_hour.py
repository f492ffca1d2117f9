"""The first hour of a new user: the no-argument run, --list, data.root mistakes, the printed
continue commands, progress bars on a terminal only, the dashboard's tag groups, readable pictures,
a quiet export."""
import fcntl
import json
import os
import pty
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time

import cv2
from conftest import CONFIGS, REPO, SMALL, TINY, read_jsonl, tool, train_cmd


def test_no_arguments_trains_the_quickstart_and_a_second_call_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # work/quickstart/ is made here
    assert tool("train", "-o", *TINY, *SMALL, "train.steps=2") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("no config given: the quickstart (") and "into work/quickstart/ | device cpu" in out[0]
    assert os.path.isdir(tmp_path / "work" / "quickstart" / "checkpoints" / "step_0000002")
    assert out[-1].startswith("done: step 2, checkpoint work/quickstart/checkpoints/step_0000002; to train longer: "
                              "python tools/train.py --resume -o ")
    assert tool("train") == 2  # a second call would start the finished quickstart again: refused, with the way on
    err = capsys.readouterr().err.strip()
    assert err == ("error: work/quickstart already holds checkpoints (newest: step 2); continue it with --resume "
                   "(and -o train.steps=N to train longer), or start a new run with --output DIR")


def test_list_shows_every_config_with_a_line(capsys):
    assert tool("train", "--list") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len([f for f in os.listdir(CONFIGS) if f.endswith(".yaml")])
    assert all(len(ln.split(maxsplit=1)) == 2 for ln in lines)  # a name and a description each
    assert any(ln.startswith("configs/quickstart.yaml") and "offline" in ln for ln in lines)


def test_an_explicit_data_root_is_the_only_place_looked_at(tmp_path, capsys):
    out = tmp_path / "run"
    assert tool("train", "--output", str(out), "-c", os.path.join(CONFIGS, "quickstart.yaml"),
                "-o", *TINY, "data.root=/nonexistent/fmnist") == 2
    assert capsys.readouterr().err.strip() == "error: data.root '/nonexistent/fmnist' does not exist"
    (tmp_path / "empty").mkdir()
    assert tool("train", "--output", str(out), "-c", os.path.join(CONFIGS, "quickstart.yaml"),
                "-o", *TINY, f"data.root={tmp_path / 'empty'}", "data.download=false") == 2
    err = capsys.readouterr().err.strip()
    assert f"t10k-images-idx3-ubyte.gz not found in {tmp_path / 'empty'};" in err and ".cache" not in err
    assert not out.exists()


def test_resume_into_a_folder_that_does_not_exist_says_so(tmp_path, capsys):
    out = tmp_path / "quickstrat"
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(out), "--resume",
                "-o", *TINY, *SMALL, "train.steps=2") == 0
    assert (f"--resume: there is no run folder {out} (nothing to continue): starting a new run there, from step 0"
            in capsys.readouterr().out)


def _run(cmd, **kw):
    args = shlex.split(cmd)
    assert args[:2] == ["python", "tools/train.py"]
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "train.py"), *args[2:]], cwd=REPO,
                          capture_output=True, text=True, timeout=600, **kw)


def test_the_stop_message_prints_the_command_that_continues_the_run(tmp_path):
    run = tmp_path / "run"
    args = ["-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY, *SMALL,
            "train.steps=12", "train.save_every=100"]
    proc = subprocess.Popen(train_cmd(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while not ((run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().strip()):
        assert proc.poll() is None
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    line = [ln for ln in out.splitlines() if ln.startswith("stopped at step")][0]
    cmd = line.split("continue with: ", 1)[1]
    assert cmd.startswith(f"python tools/train.py -c {os.path.join(CONFIGS, 'quickstart.yaml')} --output {run} "
                          f"--resume -o ")
    p = _run(cmd)  # the printed command, as printed
    assert p.returncode == 0, p.stderr
    assert "resumed from" in p.stdout and read_jsonl(run / "metrics.jsonl")[-1]["step"] == 12
    done = [ln for ln in p.stdout.splitlines() if ln.startswith("done: step 12")][0]
    p = _run(done.split("to train longer: ", 1)[1])
    assert p.returncode == 0 and read_jsonl(run / "metrics.jsonl")[-1]["step"] == 24


def _train_in(tmp_path, terminal: bool):
    args = train_cmd("-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(tmp_path / str(terminal)), "-o",
                     *TINY, *SMALL, "train.steps=6", "train.eval_every=6", "train.eval_samples=50")
    env = dict(os.environ, PADDLE_GAN_PROGRESS="")  # decided by the terminal, as for a user
    if not terminal:
        p = subprocess.run(args, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
        return p.stdout + p.stderr
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal of 120 columns
    proc = subprocess.Popen(args, cwd=REPO, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_on_a_terminal_plain_lines_in_a_pipe(tmp_path):
    shown = _train_in(tmp_path, terminal=True)
    assert "train:" in shown and "%|" in shown and ("step/s" in shown or "s/step" in shown)
    assert "generating + features:" in shown  # the in-training evaluation too
    assert "step 6/6 (100%)" in shown  # and the status lines, above the bar
    piped = _train_in(tmp_path, terminal=False)
    assert "%|" not in piped and "\r" not in piped and "step 6/6 (100%)" in piped


def test_the_dashboard_opens_on_the_training_curves(tmp_path):
    from visualdl import LogReader

    run = tmp_path / "run"
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY, *SMALL,
                "train.steps=4", "train.eval_every=4", "train.eval_samples=50", "train.eval_metrics=fid,kid,is,prdc") == 0
    tags = LogReader(file_path=str(run / "vdl" / "vdlrecords.paddle_gan.log")).get_tags()["scalar"]
    assert {"GAN/loss_D", "GAN/loss_G", "GAN/D(x)", "GAN/D(G(z))", "perf/img_per_s",
            "score/fid_lenet_fashion"} <= set(tags)
    # VisualDL sorts tag groups alphabetically, ignoring case, and opens only the first
    assert sorted({t.split("/")[0] for t in tags}, key=str.lower)[0] == "GAN"
    # sample grids are enlarged to >= 64 px per image, exact pixels: 8 x 8 images of 32 px, 2 px apart, x2
    grid = cv2.imread(str(run / "samples" / "step_0000004.png"), cv2.IMREAD_GRAYSCALE)
    assert grid.shape == (2 * (2 + 8 * 34), 2 * (2 + 8 * 34))
    assert (grid[0::2, 0::2] == grid[1::2, 1::2]).all()  # each pixel is a 2 x 2 block
    curves = cv2.imread(str(run / "curves.png"))
    assert curves.shape[0] >= 7 * 250  # losses, D output, and FID, KID, IS, PR, DC each on its own panel


def test_export_is_quiet_and_says_grey_for_grey(tmp_path, capfd):
    run = tmp_path / "run"
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(run), "-o", *TINY, *SMALL,
                "train.steps=2") == 0
    capfd.readouterr()
    assert tool("export", "--checkpoint", str(run / "checkpoints" / "step_0000002"), "--out", str(tmp_path / "e"),
                "--uint8") == 0
    out = capfd.readouterr()
    assert "not support" not in out.err and "Warning" not in out.err
    info = json.load(open(tmp_path / "e" / "export.json"))
    assert info["output"] == "uint8 [N, 32, 32, 1] in 0..255 (HWC, grey)"


def test_resume_takes_the_checkpoints_folder_as_its_run(tmp_path, capsys):
    """--resume <run>/checkpoints (what tab completion offers) continues the run like --resume <run>."""
    from conftest import train

    run = tmp_path / "run"
    train(run, "train.steps=2", check=True)
    assert tool("train", "--resume", str(run / "checkpoints"), "-o", "train.steps=3") == 0
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")][-1] == 3
    assert "resumed from" in capsys.readouterr().out


# ---- part 2: what got in a new user's way ---------------------------------------------------------------

def test_the_tools_take_a_run_folder_and_list_the_zoo(small_run, tmp_path, capsys):
    assert tool("generate", "--checkpoint", str(small_run), "--num", "2", "--out", str(tmp_path / "g")) == 0
    err = capsys.readouterr().err
    assert f"{small_run} is a run folder: using its newest checkpoint, " in err and "(step 8)" in err
    for name in ("generate", "eval", "export"):  # --pretrained list alone, as the --help texts say
        assert tool(name, "--pretrained", "list") == 0
        assert capsys.readouterr().out.split() == ["fashion_mnist", "fashion_mnist_cond", "fashion_mnist_resnet",
                                                       "fashion_mnist_stylegan2"]


def test_resuming_below_the_reached_step_says_so(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    before = (run / "config.yaml").read_text()
    assert tool("train", "--resume", str(run), "-o", "train.steps=6") == 2
    assert capsys.readouterr().err.strip() == ("error: the run is already at step 8, past train.steps=6: nothing to "
                                               "train (-o train.steps=N with N > 8 trains it further)")
    assert (run / "config.yaml").read_text() == before


def test_command_line_slips_get_a_hint(tmp_path, capsys):
    code = None
    try:
        tool("train", "--output", str(tmp_path / "x"), "train.amp=bfloat16")
    except SystemExit as e:
        code = e.code
    assert code == 2 and "train.amp=bfloat16: a config override goes after -o, e.g. -o train.amp=bfloat16" \
        in capsys.readouterr().err
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstar.yaml")) == 2
    assert capsys.readouterr().err.strip().endswith("quickstar.yaml (did you mean "
                                                    f"{os.path.join(CONFIGS, 'quickstart.yaml')}?); --list shows "
                                                    "the configs")
    assert tool("train", "-c", os.path.join(CONFIGS, "quickstart.yaml"), "--output", str(tmp_path / "r"), "-o",
                *TINY, "data.limit=10") == 2
    assert "fewer than train.batch_size=16: -o train.batch_size=10 (or fewer) trains on it" in capsys.readouterr().err


def test_list_in_a_closed_pipe_and_from_another_folder(tmp_path):
    p = subprocess.run(f"{shlex.quote(sys.executable)} {os.path.join(REPO, 'tools', 'train.py')} --list | head -1",
                       shell=True, capture_output=True, text=True, cwd=tmp_path)
    assert p.stdout.startswith(os.path.join(REPO, "configs", "acgan_fashion_mnist.yaml")) and "Traceback" not in \
        p.stderr and "Error" not in p.stderr, p.stderr  # absolute paths: relative ones from here would be ../..


def test_long_work_prints_a_line_every_5_s_in_a_log(monkeypatch, capsys):
    from paddle_gan import progress

    monkeypatch.delenv("PADDLE_GAN_PROGRESS", raising=False)
    clock = iter(range(0, 100, 3))  # 3 s pass between updates
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with progress.bar(30, "generating + features", "img") as bar:  # stderr is no terminal here
        for _ in range(6):
            bar.update(5)
    assert capsys.readouterr().err.splitlines() == ["generating + features: 10/30 img (6 s)",
                                                    "generating + features: 20/30 img (12 s)",
                                                    "generating + features: 30/30 img (18 s)"]
    with progress.bar(30, "train", "step", lines=None) as bar:  # the training loop prints its own status lines
        bar.update(30)
    assert capsys.readouterr().err == ""
