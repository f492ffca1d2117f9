"""Generate images from a checkpoint folder alone (no dataset, no config file needed).

    python tools/generate.py --checkpoint work/quickstart/checkpoints/step_0001200 --num 64 --out out/
    python tools/generate.py --checkpoint CKPT --num 64 --grid --out out/           # one grid.png
    python tools/generate.py --checkpoint CKPT --interpolate 8 --steps 10 --out out/  # slerp strips
    python tools/generate.py --checkpoint CKPT --gif --out out/    # the run's sample grids -> progress.gif
    python tools/generate.py --pretrained fashion_mnist --num 64 --grid --out out/  # no training needed

Images are PNGs named 000000.png, 000001.png, ... at the model's size; --grid enlarges the grid as the
run's own sample grids are (each image shown at 64 px or more). The same --seed gives the same images. For a
class-conditional model --class picks the class (index or name, e.g. --class Sneaker); without it
the images go through the classes in turn, and --grid shows one row per class. A checkpoint with an
EMA generator (train.ema) generates with that one unless --raw.
"""
import argparse
import os


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint folder")
    src.add_argument("--pretrained", metavar="NAME", help="a generator that ships with the package (README "
                     "'Pretrained generators'), e.g. fashion_mnist; --pretrained list shows them")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--num", type=int, default=64, help="images to generate (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", action="store_true", help="one grid.png instead of one file per image")
    p.add_argument("--interpolate", type=int, default=0, metavar="K", help="write K latent interpolation strips")
    p.add_argument("--steps", type=int, default=8, help="images per interpolation strip (default 8)")
    p.add_argument("--gif", action="store_true", help="assemble the run's samples/*.png into progress.gif")
    p.add_argument("--class", dest="cls", metavar="CLASS",
                   help="class-conditional models: generate this class (index or name); default: every class in turn")
    p.add_argument("--device", default="auto", help="auto (a GPU when Paddle is a CUDA build and sees one, "
                   "else the CPU) | cpu | gpu | gpu:N")
    p.add_argument("--raw", action="store_true",
                   help="use the raw generator G even when the checkpoint has an EMA one (G_ema, train.ema)")
    args = p.parse_args(argv)
    if args.num < 1 or args.interpolate < 0 or args.steps < 2:
        p.error("--num must be >= 1, --interpolate >= 0, --steps >= 2")
    from paddle_gan import device, progress, zoo
    from paddle_gan.errors import DataError, run_tool
    from paddle_gan.files import atomic_write_bytes
    from paddle_gan.gan.kernels import for_inference
    from paddle_gan.gan.labels import plan_for
    from paddle_gan.images import display_scale, encode_png, make_grid
    from paddle_gan.inference import (class_index, generate, interpolation_z, open_generator, sample_grid,
                                      sample_noise)
    from paddle_gan.run import layout
    from paddle_gan.run.plots import write_progress_gif

    def body() -> int:
        device.use(args.device, key="--device")
        if args.pretrained == "list":
            print("\n".join(zoo.names()))
            return 0
        args.checkpoint = args.checkpoint or zoo.path(args.pretrained)
        gen = open_generator(args.checkpoint, raw=args.raw)
        G, cfg = for_inference(gen.G, gen.cfg.train.conv), gen.cfg
        cls = class_index(args.cls, gen.classes) if args.cls is not None else None
        plan = plan_for(cfg.model, cls)  # which labels: none, every class in turn, or one class
        os.makedirs(args.out, exist_ok=True)
        written = []
        if args.gif:
            run_dir = layout.run_of_checkpoint(args.checkpoint)
            written.append(os.path.join(args.out, layout.PROGRESS_GIF))
            if run_dir is None or not write_progress_gif(run_dir, written[-1]):
                raise DataError(f"{args.checkpoint}: no sample grids to assemble (no run folder with "
                                f"{layout.SAMPLES}/ around this checkpoint)")
        elif args.interpolate:
            z = interpolation_z(args.seed, args.interpolate, args.steps, cfg.model.z_dim)
            for i, strip in enumerate(z):  # a conditional strip keeps one class: --class, else class i
                written.append(os.path.join(args.out, f"interp_{i:03d}.png"))
                atomic_write_bytes(written[-1], encode_png(make_grid(generate(G, strip, plan.strip_labels(i, len(strip))),
                                                                     nrow=args.steps)))
        elif args.grid:  # conditional: one row per class, the same z down each column
            written.append(os.path.join(args.out, "grid.png"))
            grid = sample_grid(G, sample_noise(args.seed, args.num, cfg.model.z_dim), plan,
                               scale=display_scale(cfg.model.img_size))  # as the run's own grids: cells >= 64 px
            atomic_write_bytes(written[-1], encode_png(grid))
        else:
            with progress.bar(args.num, "generating", "img") as bar:
                images = generate(G, sample_noise(args.seed, args.num, cfg.model.z_dim), plan.balanced(args.num),
                                  on_batch=bar.update)
            for i, img in enumerate(images):
                written.append(os.path.join(args.out, f"{i:06d}.png"))
                atomic_write_bytes(written[-1], encode_png(make_grid(img[None], pad=0)))
        print(f"wrote {len(written)} file(s) to {args.out}" + (f": {written[0]}" if len(written) == 1 else ""))
        return 0

    return run_tool(body)

