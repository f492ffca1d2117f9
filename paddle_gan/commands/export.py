"""Export a checkpoint's generator for inference: paddle.jit.save, and ONNX through paddle2onnx.

    python tools/export.py --checkpoint work/quickstart/checkpoints/step_0001200 --out export/quickstart
    python tools/export.py --checkpoint CKPT --out DIR --uint8
    python tools/export.py --checkpoint CKPT --out DIR --format onnx      # also DIR/generator.onnx
    python tools/export.py --pretrained fashion_mnist --out DIR --format onnx   # a generator the package ships

Writes DIR/generator.json + generator.pdiparams (the program and weights), with --format onnx also
DIR/generator.onnx (pip install -e '.[onnx]'), and DIR/export.json (what goes in and comes out).
--format checkpoint (or safetensors: no pickle at all) writes a generator-only checkpoint folder
that generate.py and eval.py read instead. DIR is written whole: a new folder, or an earlier export
of the same kind (replaced); any other existing folder is refused, so nothing of yours is lost.
Input: z, float32 [N, z_dim] drawn from N(0, I), and for a class-conditional model label, int64 [N].
Output: float32 [N, C, H, W] in [-1, 1]; with --uint8, uint8 [N, H, W, C] in 0..255, ready to save as
images. A checkpoint with an EMA generator exports that one (--raw: G).

    import paddle; G = paddle.jit.load("DIR/generator"); images = G(paddle.randn([16, 100]))
    import onnxruntime, numpy as np; s = onnxruntime.InferenceSession("DIR/generator.onnx")
    images = s.run(None, {"z": np.random.randn(16, 100).astype("float32")})[0]
"""
import argparse
import os


def main(argv=None) -> int:
    from paddle_gan import zoo

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint folder, or a run folder (its newest checkpoint)")
    zoo.add_argument(src)
    p.add_argument("--out", help="output folder: a new one, or an earlier export (replaced whole); "
                   "any other existing folder is refused")
    p.add_argument("--uint8", action="store_true", help="output uint8 HWC images instead of floats in [-1, 1]")
    p.add_argument("--format", default="paddle", choices=["paddle", "onnx", "checkpoint", "safetensors"],
                   help="paddle: paddle.jit.save; onnx: also generator.onnx (paddle2onnx); checkpoint: a "
                        "generator-only checkpoint folder (a few MB; the tools read it), its generator as .pdparams "
                        "and .safetensors; safetensors: the same with no pickle at all (what paddle_gan/zoo ships)")
    p.add_argument("--device", default="auto", help="auto (a GPU when Paddle is a CUDA build and sees one, "
                   "else the CPU) | cpu | gpu | gpu:N")
    p.add_argument("--raw", action="store_true",
                   help="use the raw generator G even when the checkpoint has an EMA one (G_ema, train.ema)")
    p.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                   help="a G with a mapping network (stylegan2): export it with its styles pulled towards their "
                        "mean (0..1; default 1: as trained)")
    args = p.parse_args(argv)
    from paddle_gan import device
    from paddle_gan.errors import run_tool
    from paddle_gan.export import export_generator, previous_export, to_onnx
    from paddle_gan.files import write_folder
    from paddle_gan.run.generator import open_generator, truncate

    def body() -> int:
        if zoo.listed(args.pretrained):
            return 0
        if not args.out:
            from paddle_gan.errors import ConfigError

            raise ConfigError("--out: give the folder to write the export to")
        device.use(args.device, key="--device")
        args.checkpoint = zoo.checkpoint(args.pretrained, args.checkpoint)
        if args.format in ("checkpoint", "safetensors"):
            from paddle_gan.errors import ConfigError
            from paddle_gan.run.checkpoint import save_generator_only

            if args.truncation != 1.0:
                raise ConfigError(f"--truncation: a checkpoint keeps the generator as trained (truncate when you "
                                  f"generate or export it for inference)")
            out = save_generator_only(args.checkpoint, args.out, pickle=args.format == "checkpoint")
            print(f"wrote {out} ({sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) / 1e6:.1f} MB): "
                  f"python tools/generate.py --checkpoint {out} --num 64 --grid --out DIR")
            return 0
        gen = open_generator(args.checkpoint, raw=args.raw)
        truncate(gen.G, args.truncation)
        final = os.path.normpath(args.out)

        def fill(tmp: str) -> None:  # the whole export in a temporary folder, renamed into place when complete
            prefix = export_generator(gen.G, gen.cfg, tmp, uint8=args.uint8, source=os.path.abspath(args.checkpoint),
                                      classes=gen.classes, which=gen.which, onnx=args.format == "onnx",
                                      final_dir=final)
            if args.format == "onnx":
                to_onnx(prefix)

        write_folder(final, fill, previous_export)
        prefix = os.path.join(final, "generator")
        print(f"exported to {prefix}.* (load with paddle.jit.load('{prefix}')); see {os.path.join(final, 'export.json')}")
        if args.format == "onnx":
            print(f"ONNX: {prefix}.onnx (inputs: z{', label' if gen.cfg.model.num_classes else ''})")
        return 0

    return run_tool(body)

