"""Training speed of the image GANs under each speed option, on one device: fp32 or bf16
autocast (train.precision), contiguous or channels-last memory (train.channels_last), eager or
torch.compile (train.compile). Same config, data, seed and step function in every row; only the
options change. ProGAN is timed at its full resolution (model.phase_images=1 makes the first
steps run through the growth, which the warm-up absorbs).

    python benchmarks/gan_image_speed.py --device cuda                  # a GPU: every row
    python benchmarks/gan_image_speed.py --device cpu --steps 20 --no-compile --quick

Steady-state generator steps/s after `--warmup` steps (compilation included there and shown as
"first steps s"), synchronised on CUDA. Prints a markdown table and writes
benchmarks/results/gan_image_speed_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import CONFIGS as SHIPPED  # noqa: E402
from common import markdown  # noqa: E402
from fewlabels import checkpoint  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.loop import build_experiment  # noqa: E402

CONFIGS = {"fashion_dcgan": [], "fashion_progan": ["model.phase_images=1"]}
VARIANTS = {
    "fp32": [],
    "bf16": ["train.precision=bf16"],
    "channels-last": ["train.channels_last=true"],
    "bf16 + channels-last": ["train.precision=bf16", "train.channels_last=true"],
    "compile": ["train.compile=true"],
    "bf16 + channels-last + compile": ["train.precision=bf16", "train.channels_last=true", "train.compile=true"],
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(name: str, options: list[str], device: torch.device, warmup: int, steps: int,
               extra: list[str]) -> dict:
    cfg = configlib.load(SHIPPED / "gan" / f"{name}.yaml", [*CONFIGS[name], *extra, *options])
    checkpoint.seed_everything(cfg.seed)
    exp = build_experiment(cfg, device)
    t0 = time.perf_counter()
    for step in range(1, warmup + 1):
        exp.train_step(step)
    sync(device)
    t1 = time.perf_counter()
    for step in range(warmup + 1, warmup + steps + 1):
        logs = exp.train_step(step)
    sync(device)
    t2 = time.perf_counter()
    per_s = steps / (t2 - t1)
    return {"steps/s": per_s, "images/s": per_s * cfg.train.batch_size * cfg.train.n_critic,
            "first steps s": t1 - t0, "loss_g": float(logs["loss_g"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=200, help="timed generator steps per row")
    ap.add_argument("--warmup", type=int, default=30, help="untimed steps first (compilation happens here)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    ap.add_argument("--quick", action="store_true", help="CPU-sized nets: batch 32, 32 channels, 2,048 images")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = [f"train.threads={args.threads}"]
    if args.quick:
        extra += ["train.batch_size=32", "model.channels=32", "data.limit=2048"]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = []
    for name in args.configs:
        for variant, options in VARIANTS.items():
            if args.no_compile and "train.compile=true" in options:
                continue
            row = {"config": name, "variant": variant,
                   **time_steps(name, options, device, args.warmup, args.steps, extra)}
            rows.append(row)
            print(f"{name:15s} {variant:32s} {row['steps/s']:8.2f} steps/s", file=sys.stderr)
        base = next(r["steps/s"] for r in rows if r["config"] == name and r["variant"] == "fp32")
        for r in rows:
            if r["config"] == name:
                r["speed-up"] = r["steps/s"] / base
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"\n## Image GAN training speed, {where}; {args.steps} timed steps after {args.warmup}\n")
    print(markdown(rows, ["config", "variant", "steps/s", "images/s", "speed-up", "first steps s"]))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / f"gan_image_speed_{device.type}.json").write_text(
        json.dumps({"device": where, "args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
