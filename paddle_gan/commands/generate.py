"""Generate images from a checkpoint folder alone (no dataset, no config file needed).

    python tools/generate.py --checkpoint work/quickstart --num 64 --out out/   # a run: its newest checkpoint
    python tools/generate.py --checkpoint CKPT --num 64 --grid --out out/           # one grid.png
    python tools/generate.py --checkpoint CKPT --interpolate 8 --steps 10 --out out/  # slerp strips
    python tools/generate.py --checkpoint CKPT --gif --out out/    # the run's sample grids -> progress.gif
    python tools/generate.py --pretrained fashion_mnist --num 64 --grid --out out/  # no training needed

Images are PNGs named 000000.png, 000001.png, ... at the model's size; --grid and --interpolate
enlarge their pictures as the run's own sample grids are (each image shown at 64 px or more). The
output folder is written whole, with generated.json saying what made it: a new folder, or one this
command wrote before (replaced); any other existing folder is refused, so nothing of yours is lost.
The same --seed gives the same images. For a class-conditional model --class picks the class (index
or name in any case, e.g. --class sneaker); without it the images go through the classes in turn,
and --grid shows one row per class. A checkpoint with an EMA generator (train.ema) generates with
that one unless --raw.
"""
import argparse
import os
import re

MANIFEST = "generated.json"  # what a folder written by this command holds; it may replace such a folder only
WRITTEN_BY = "paddle_gan generate"
OURS = re.compile(r"^(\d{6,}\.png|grid\.png|interp_\d{3,}\.png|progress\.gif|generated\.json)$")


def previous_output(path: str) -> str | None:
    """None if `path` is an earlier output of this command (its generated.json, and only the files it
    writes), else why not."""
    import json

    from paddle_gan.files import only_entries

    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as f:
            ok = json.loads(f.read(1 << 20)).get("written_by") == WRITTEN_BY
    except (OSError, ValueError, AttributeError, RecursionError):
        ok = False
    return only_entries(path, OURS.match) if ok else f"no {MANIFEST} of an earlier tools/generate.py"


def main(argv=None) -> int:
    from paddle_gan import zoo
    from paddle_gan.bounds import MAX_GENERATED, MAX_STRIP_STEPS, MAX_STRIPS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint folder, or a run folder (its newest checkpoint)")
    zoo.add_argument(src)
    p.add_argument("--out", help="output folder: a new one, or an earlier output of this command (replaced whole); "
                   "any other existing folder is refused")
    p.add_argument("--num", type=int, default=64, help=f"images to generate (default 64; at most {MAX_GENERATED}, "
                   f"with --grid as many as a grid picture holds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", action="store_true", help="one grid.png instead of one file per image")
    p.add_argument("--interpolate", type=int, default=0, metavar="K",
                   help=f"write K latent interpolation strips (at most {MAX_STRIPS})")
    p.add_argument("--steps", type=int, default=8, help=f"images per interpolation strip (default 8; 2..{MAX_STRIP_STEPS})")
    p.add_argument("--gif", action="store_true", help="assemble the run's samples/*.png into progress.gif")
    p.add_argument("--class", dest="cls", metavar="CLASS",
                   help="class-conditional models: generate this class (index or name, any case); default: every "
                        "class in turn")
    p.add_argument("--device", default="auto", help="auto (a GPU when Paddle is a CUDA build and sees one, "
                   "else the CPU) | cpu | gpu | gpu:N")
    p.add_argument("--raw", action="store_true",
                   help="use the raw generator G even when the checkpoint has an EMA one (G_ema, train.ema)")
    p.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                   help="a G with a mapping network (stylegan2): styles pulled towards their mean, 0..1 (default 1: "
                        "as trained; 0.7 trades variety for typical images)")
    args = p.parse_args(argv)
    from paddle_gan import device, progress
    from paddle_gan.bounds import check_count, check_grid
    from paddle_gan.errors import ConfigError, DataError, run_tool
    from paddle_gan.files import write_folder

    def body() -> int:
        if zoo.listed(args.pretrained):
            return 0
        if not args.out:
            raise ConfigError("--out: give the folder to write the images to")
        check_count(args.num, MAX_GENERATED, "--num")
        check_count(args.interpolate, MAX_STRIPS, "--interpolate", low=0)
        check_count(args.steps, MAX_STRIP_STEPS, "--steps", low=2)
        device.use(args.device, key="--device")
        from paddle_gan.gan.kernels import for_inference
        from paddle_gan.gan.labels import labeling_for
        from paddle_gan.images import display_scale
        from paddle_gan.run.generator import class_index, open_generator, truncate
        from paddle_gan.run import layout

        args.checkpoint = zoo.checkpoint(args.pretrained, args.checkpoint)
        gen = open_generator(args.checkpoint, raw=args.raw)
        G, cfg = for_inference(gen.G, gen.cfg.train.conv), gen.cfg
        truncate(G, args.truncation)
        m = cfg.model
        cls = class_index(args.cls, gen.classes) if args.cls is not None else None
        labeling = labeling_for(m, cls)  # which labels: none, every class in turn, or one class
        scale = display_scale(m.img_size)  # as the run's own grids: cells >= 64 px on screen
        if args.gif:
            run_dir = layout.run_of_checkpoint(args.checkpoint)
            if run_dir is None or not layout.sample_files(run_dir):
                raise DataError(f"{args.checkpoint}: no sample grids to assemble (no run folder with "
                                f"{layout.SAMPLES}/ around this checkpoint)")
        elif args.interpolate:
            check_grid(args.steps, m.img_size, m.channels, "--steps", nrow=args.steps, scale=scale,
                       what="an interpolation strip")
        elif args.grid:
            check_grid(labeling.grid_images(args.num), m.img_size, m.channels, "--num, --grid",
                       nrow=labeling.row_length(labeling.grid_images(args.num)), scale=scale)
        written = []

        def fill(tmp: str) -> None:
            written.extend(write_outputs(args, G, cfg, labeling, scale, tmp, progress))
            _manifest(tmp, args, gen, written)

        out = write_folder(args.out, fill, previous_output)
        print(f"wrote {len(written)} file(s) to {out}" + (f": {os.path.join(out, written[0])}" if len(written) == 1 else ""))
        return 0

    return run_tool(body)


def write_outputs(args, G, cfg, labeling, scale: int, folder: str, progress) -> list[str]:
    """The images of the command line into `folder`; returns the names of the files written."""
    from paddle_gan.files import atomic_write_bytes
    from paddle_gan.images import encode_png, make_grid
    from paddle_gan.gan.sample import generate, interpolation_z, sample_grid, sample_noise
    from paddle_gan.run import layout
    from paddle_gan.run.plots import write_progress_gif

    z_dim = cfg.model.z_dim
    if args.gif:
        if not write_progress_gif(layout.run_of_checkpoint(args.checkpoint), os.path.join(folder, layout.PROGRESS_GIF)):
            from paddle_gan.errors import DataError

            raise DataError(f"{args.checkpoint}: none of the run's sample grids could be read")
        return [layout.PROGRESS_GIF]
    names = []
    if args.interpolate:
        z = interpolation_z(args.seed, args.interpolate, args.steps, z_dim)
        for i, strip in enumerate(z):  # a conditional strip keeps one class: --class, else class i
            names.append(f"interp_{i:03d}.png")
            images = generate(G, strip, labeling.strip_labels(i, len(strip)))
            atomic_write_bytes(os.path.join(folder, names[-1]), encode_png(make_grid(images, nrow=args.steps,
                                                                                     scale=scale)))
    elif args.grid:  # conditional: one row per class, the same z down each column
        names.append("grid.png")
        grid = sample_grid(G, sample_noise(args.seed, args.num, z_dim), labeling, scale=scale)
        atomic_write_bytes(os.path.join(folder, names[-1]), encode_png(grid))
    else:  # a batch at a time, each written as it comes: memory does not grow with --num
        z, labels = sample_noise(args.seed, args.num, z_dim), labeling.balanced(args.num)
        with progress.bar(args.num, "generating", "img") as bar:
            for start in range(0, args.num, 256):
                batch = generate(G, z[start:start + 256], None if labels is None else labels[start:start + 256])
                for i, img in enumerate(batch, start):
                    names.append(f"{i:06d}.png")
                    with open(os.path.join(folder, names[-1]), "wb") as f:  # (the folder is renamed in whole)
                        f.write(encode_png(make_grid(img[None], pad=0)))
                bar.update(len(batch))
    return names


def _manifest(folder: str, args, gen, written: list) -> None:
    import json

    from paddle_gan.files import atomic_write_text

    info = {"written_by": WRITTEN_BY, "checkpoint": os.path.abspath(args.checkpoint), "step": gen.step,
            "generator": gen.which, "seed": args.seed, "num": args.num, "class": args.cls,
            "what": "progress.gif" if args.gif else "interpolation strips" if args.interpolate else
            "grid" if args.grid else "images", "files": len(written)}
    atomic_write_text(os.path.join(folder, MANIFEST), json.dumps(info, indent=1) + "\n")
