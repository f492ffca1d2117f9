#!/usr/bin/env python
"""The quality each config reaches in a fixed budget of training time (bench_quality.py --minutes):

    python benchmarks/bench_quality.py --minutes 60 --root work/budget60 --run NAME=CONFIG[:KEY=VALUE,...] ...
    [--phase speed|train|score|report|all] [--data-root DIR]

speed   each config's training step timed alone by bench_train.py (a fresh process each, one after the
        other: run it on an otherwise idle machine); steps = minutes x img/s / batch, kept in
        ROOT/plan.json so later sittings train to the same plan
train   tools/train.py for those steps into ROOT/NAME (continued with --resume when it exists), on the
        Fashion-MNIST train split (60k), evaluated every tenth of the budget on 2,000 samples; runs may
        share the machine: their time axis is steps / measured speed, not the wall clock
score   tools/eval.py --num 10000 on the last checkpoint and on best/ (the run's own reference split);
        with --at M, on the checkpoint of the step that M minutes buy (a tenth of the budget's step
        count times k, e.g. --minutes 60 --at 30), for runs that were stopped before the end
report  ROOT/fid_vs_minutes.png (the 2,000-sample curves against the budget's minutes) and ROOT/table.md
        with the CPU, the date and this command
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
DATA = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist: the full splits, offline


def _run_spec(spec: str) -> tuple[str, str, list]:
    name, _, rest = spec.partition("=")
    config, _, overrides = rest.partition(":")
    return name, config, [o for o in overrides.split(",") if o]


def _speed(config: str, overrides: list) -> dict:
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "bench_train.py"), "--no-torch", "--config", config,
           "--steps", "20", "--repeats", "3", "-o", *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True).stdout
    return next(json.loads(ln) for ln in out.splitlines() if '"paddle_img_s"' in ln)


def _tool(*args) -> dict:
    p = subprocess.run([sys.executable, os.path.join(REPO, "tools", f"{args[0]}.py"), *args[1:]], capture_output=True,
                       text=True, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"{args[0]} {' '.join(args[1:4])}...: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    return json.loads(last) if last.startswith("{") else {}


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, required=True, help="the budget of training time per config")
    ap.add_argument("--root", required=True, help="folder of the runs, plan.json, the picture and the table")
    ap.add_argument("--run", action="append", required=True, metavar="NAME=CONFIG[:KEY=VALUE,...]")
    ap.add_argument("--phase", default="all", choices=["speed", "train", "score", "report", "all"])
    ap.add_argument("--data-root", default=DATA, help=f"the Fashion-MNIST files (default {DATA})")
    ap.add_argument("--at", type=float, help="score the checkpoint at this many minutes, a multiple of a "
                                             "tenth of --minutes (default: the last one)")
    args = ap.parse_args(argv)
    runs = [_run_spec(s) for s in args.run]
    os.makedirs(args.root, exist_ok=True)
    plan_path = os.path.join(args.root, "plan.json")
    plan = json.load(open(plan_path)) if os.path.isfile(plan_path) else {}
    data = [f"data.root={args.data_root}", "data.name=fashion_mnist", "data.split=train"]
    if args.phase in ("speed", "all"):
        from paddle_gan.config import load_config

        for name, config, overrides in runs:
            if name in plan:
                continue
            speed = _speed(config, overrides)
            batch = load_config(config, overrides + data).train.batch_size
            steps = int(round(args.minutes * 60 * speed["paddle_img_s"] / batch))
            plan[name] = {"config": config, "overrides": overrides, "img_s": speed["paddle_img_s"], "batch": batch,
                          "steps": steps, "minutes": args.minutes, "cpu": speed["cpu"]}
            json.dump(plan, open(plan_path, "w"), indent=1)
            print(json.dumps({name: plan[name]}), flush=True)
    if args.phase in ("train", "all"):
        for name, config, overrides in runs:
            p, run = plan[name], os.path.join(args.root, name)
            every = max(1, p["steps"] // 10)
            resume = ["--resume"] if os.path.isdir(os.path.join(run, "checkpoints")) else []
            _tool("train", "-c", config, "--output", run, *resume, "-o", *data, *overrides, f"train.steps={p['steps']}",
                  f"train.eval_every={every}", "train.eval_samples=2000", f"train.save_every={every}",
                  f"train.sample_every={every}", "train.keep_checkpoints=0", "train.minutes=0")
            print(f"{name}: trained to step {p['steps']}", flush=True)
    if args.phase in ("score", "all"):
        for name, _, _ in runs:
            run = os.path.join(args.root, name)
            for which in ((f"at{args.at:g}",) if args.at else ("last", "best")):  # (a best/ may be after --at)
                target = (os.path.join(run, "checkpoints", f"step_{_step_at(plan[name], args.at):07d}") if args.at
                          else run if which == "last" else os.path.join(run, "checkpoints", "best"))
                record = _tool("eval", "--checkpoint", target, "--num", "10000", "--data-root", args.data_root,
                               "--metrics", "fid")
                plan[name][f"fid10k_{which}"] = record["fid_lenet_fashion"]
                plan[name][f"step_{which}"] = record["step"]
            json.dump(plan, open(plan_path, "w"), indent=1)
            print(json.dumps({name: plan[name]}), flush=True)
    if args.phase in ("report", "all"):
        report(args, plan, runs)
    return 0


def _step_at(p: dict, minutes: float) -> int:
    """The step a run of plan entry p has trained for `minutes` of its budget (a tenth's multiple: saved)."""
    tenths = minutes / p["minutes"] * 10
    if abs(tenths - round(tenths)) > 1e-6 or not 1 <= round(tenths) <= 10:
        raise SystemExit(f"error: --at {minutes:g}: not a multiple of a tenth of the {p['minutes']:g}-minute budget")
    return round(tenths) * max(1, p["steps"] // 10)


def report(args, plan: dict, runs: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from paddle_gan.run.run_log import read_metrics

    fig, ax = plt.subplots(figsize=(7, 4))
    # columns: every point scored at 10k (score --at M, then the end), then best/
    ats = sorted({float(k[len("fid10k_at"):]) for n, _, _ in runs for k in plan[n] if k.startswith("fid10k_at")})
    cols = [(f"at{m:g}", f"{m:g} min") for m in ats] + [("last", f"{args.minutes:g} min (last)"), ("best", "best/")]
    rows = []
    for name, _, _ in runs:
        p = plan[name]
        evals = [r for r in read_metrics(os.path.join(args.root, name, "metrics.jsonl")) if "fid_lenet_fashion" in r]
        minutes = [r["step"] / p["steps"] * p["minutes"] for r in evals]
        ax.plot(minutes, [r["fid_lenet_fashion"] for r in evals], marker="o", ms=3, label=name)
        cells = [f"{p['fid10k_' + k]:.2f} (step {p['step_' + k]})" if "fid10k_" + k in p else "—" for k, _ in cols]
        done = "" if "fid10k_last" in p else f" (stopped at {minutes[-1] if minutes else 0:.0f} min)"
        rows.append(f"| {name}{done} | {p['img_s']:.0f} | {p['steps']} | " + " | ".join(cells) + " |")
    for m in ats:
        ax.axvline(m, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("minutes of training (steps / the speed measured alone)")
    ax.set_ylabel("FID, 2,000 samples (lenet_fashion)")
    ax.set_yscale("log")
    ax.set_yticks([t for t in (3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 70, 100, 150) if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]])
    ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.root, "fid_vs_minutes.png"), dpi=100)
    cpu = next(iter(plan.values()))["cpu"]
    table = (f"{args.minutes:g} minutes of training each, on {cpu} ({datetime.date.today()}); "
             f"`python benchmarks/bench_quality.py --minutes {args.minutes:g} --root {args.root} "
             f"{' '.join('--run ' + s for s in args.run)}` (10k FID: `fid_lenet_fashion`, reference the train split)\n\n"
             f"| run | img/s alone | steps of {args.minutes:g} min | " + " | ".join(f"10k FID, {c}" for _, c in cols)
             + " |\n|" + "---|" * (3 + len(cols)) + "\n" + "\n".join(rows))
    open(os.path.join(args.root, "table.md"), "w").write(table + "\n")
    print(table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
