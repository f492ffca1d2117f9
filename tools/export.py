#!/usr/bin/env python
"""Export a checkpoint's generator for inference with paddle.jit.save.

    python tools/export.py --checkpoint work/quickstart/checkpoints/step_0001200 --out export/quickstart
    python tools/export.py --checkpoint CKPT --out DIR --uint8

Writes DIR/generator.json + generator.pdiparams (the program and weights) and DIR/export.json (what
goes in and comes out). Input: z, float32 [N, z_dim] drawn from N(0, I), and for a class-conditional
model label, int64 [N]. Output: float32 [N, C, H, W] in [-1, 1]; with --uint8, uint8 [N, H, W, C] in
0..255, ready to save as images. A checkpoint with an EMA generator exports that one (--raw: G).

    import paddle; G = paddle.jit.load("DIR/generator"); images = G(paddle.randn([16, 100]))
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--uint8", action="store_true", help="output uint8 HWC images instead of floats in [-1, 1]")
    p.add_argument("--device", default="auto", help="auto (a GPU when Paddle is a CUDA build and sees one, "
                   "else the CPU) | cpu | gpu | gpu:N")
    p.add_argument("--raw", action="store_true",
                   help="use the raw generator G even when the checkpoint has an EMA one (G_ema, train.ema)")
    args = p.parse_args(argv)
    from paddle_gan import device
    from paddle_gan.errors import run_tool
    from paddle_gan.inference import export_generator, open_generator

    def body() -> int:
        device.use(args.device, key="--device")
        gen = open_generator(args.checkpoint, raw=args.raw)
        prefix = export_generator(gen.G, gen.cfg, args.out, uint8=args.uint8, source=os.path.abspath(args.checkpoint),
                                  classes=gen.classes, which=gen.which)
        print(f"exported to {prefix}.* (load with paddle.jit.load('{prefix}')); see {args.out}/export.json")
        return 0

    return run_tool(body)


if __name__ == "__main__":
    sys.exit(main())
