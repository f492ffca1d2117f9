#!/usr/bin/env python
"""Time to quality: how many steps, and how much wall time, a config needs until its score first
falls below a target; or (--minutes) the quality each config reaches in a fixed time budget.

    python benchmarks/bench_quality.py configs/sngan_fashion_mnist.yaml --fid 20
    python benchmarks/bench_quality.py configs/dcgan_fashion_mnist.yaml --fid 20 --every 250 --max-steps 4000
    python benchmarks/bench_quality.py configs/quickstart.yaml --fid 40 -o train.ema=0.999

Runs the real tools/train.py (a fresh process, into a temporary run folder unless --output) with an
evaluation every --every steps (--samples generated images, default 2000, scored by the run's
extractor), watches its metrics log, and stops the run (SIGTERM: it saves and exits) at the first
evaluation whose score is below --fid. Prints one JSON line: config, target, reached (true/false),
step and wall seconds at the first evaluation below the target (or null), the best score with its
step, and every evaluation as (step, seconds, score). Wall time counts from the start of the process
and includes its evaluations; compare configs from one machine and one run of this script.

A time budget (bench_budget.py does the work):

    python benchmarks/bench_quality.py --minutes 60 --root work/budget60 \
        --run dcgan=configs/dcgan_fashion_mnist.yaml --run dcgan_ema=configs/dcgan_fashion_mnist.yaml:train.ema=0.999 \
        --run resnet=configs/sngan_resnet_fashion_mnist.yaml --run stylegan2=configs/stylegan2_fashion_mnist.yaml

measures each config's training speed alone (bench_train.py, one after another), trains each for the
steps that take --minutes at that speed (these may share the machine, and continue with --resume
across sittings: run the command again), scored every tenth of the budget on 2,000 samples and at
the end on 10,000 (fid_lenet_fashion against the 60k train split), then writes the curves of FID
against the budget's minutes (fid_vs_minutes.png) and a markdown table into --root.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def _evaluations(run: str, metric: str) -> list[dict]:
    """Evaluation rows of a run's metrics log (read by the package's own reader, which passes over a
    row being written right now): those with a <metric>_<extractor> score."""
    from paddle_gan.run import layout
    from paddle_gan.run.run_log import read_metrics

    return [row for row in read_metrics(layout.metrics_path(run))
            if any(k.startswith(f"{metric}_") and "_std_" not in k and isinstance(v, (int, float)) for k, v in row.items())]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--minutes" in argv:
        from bench_budget import main as budget

        return budget(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a config file (configs/*.yaml)")
    p.add_argument("--fid", type=float, required=True, help="the target: stop at the first score below it")
    p.add_argument("--metric", default="fid", choices=["fid", "kid"],
                   help="the score, lower is better (default fid; named <metric>_<extractor>)")
    p.add_argument("--every", type=int, default=500, help="steps between evaluations (default 500)")
    p.add_argument("--samples", type=int, default=2000, help="images per evaluation (default 2000)")
    p.add_argument("--max-steps", type=int, default=5000, help="give up after this many steps (default 5000)")
    p.add_argument("--output", help="run folder (default: a temporary one, deleted afterwards)")
    p.add_argument("-o", "--override", nargs="+", action="extend", default=[], help="more config overrides")
    args = p.parse_args(argv)
    tmp = None if args.output else tempfile.TemporaryDirectory(prefix="bench_quality-")
    run = args.output or os.path.join(tmp.name, "run")
    cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"), "-c", args.config, "--output", run, "-o",
           f"train.steps={args.max_steps}", f"train.eval_every={args.every}", f"train.eval_samples={args.samples}",
           f"train.save_every={args.every}", "train.keep_checkpoints=1", f"train.eval_metric={args.metric}",
           *args.override]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    seen, reached = [], None
    try:
        while True:
            done = proc.poll() is not None
            rows = _evaluations(run, args.metric)
            for row in rows[len(seen):]:
                key = next(k for k in row if k.startswith(f"{args.metric}_") and "_std_" not in k)
                seen.append({"step": row["step"], "seconds": round(time.perf_counter() - start, 1),
                             "score": row[key]})
                if reached is None and row[key] < args.fid:
                    reached = seen[-1]
                    proc.send_signal(signal.SIGTERM)  # it finishes the step, saves and exits
            if done:
                break
            time.sleep(0.5)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        if tmp:
            tmp.cleanup()
    if proc.returncode not in (0, 128 + signal.SIGTERM, -signal.SIGTERM) or not seen:
        print(f"error: {' '.join(cmd)} exited {proc.returncode}: {err.strip().splitlines()[-1:] or ''}",
              file=sys.stderr)
        return 1
    best = min(seen, key=lambda r: r["score"])
    print(json.dumps({"config": os.path.basename(args.config), "overrides": args.override,
                      "target": f"{args.metric} < {args.fid}", "reached": reached is not None,
                      "step": reached and reached["step"], "seconds": reached and reached["seconds"],
                      "best": best["score"], "best_step": best["step"], "evaluations": seen}))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
