"""DCGAN on scikit-learn's 8x8 digits (configs/gan/digits_dcgan.yaml) on the CPU: Fréchet
distance in a small digits classifier's features (metrics/classifier.py, trained on the digits'
training part), against the real-vs-real floor and against the same generator untrained.

    python benchmarks/gan_digits.py              # about 4 minutes on one thread
    python benchmarks/gan_digits.py --steps 2000

Prints a markdown table and writes benchmarks/results/gan_digits.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import CONFIGS, markdown  # noqa: E402
from fewlabels import checkpoint  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.loop import build_experiment, open_run, train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=None, help="generator steps (default: the config's)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    overrides = [f"seed={args.seed}"] + ([f"train.steps={args.steps}"] if args.steps else [])
    cfg = configlib.load(CONFIGS / "gan" / "digits_dcgan.yaml", overrides)
    torch.set_num_threads(cfg.train.threads)
    checkpoint.seed_everything(cfg.seed)
    untrained = build_experiment(cfg, torch.device("cpu")).evaluate()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = train(cfg, out, device="cpu")
        wall = time.perf_counter() - t0
        _, run, _ = open_run(out, "cpu")
        rows = run.read_metrics()
    m = summary["metrics"]
    table = [{"generator": f"DCGAN, {cfg.train.steps} steps", "fd": m["fd"], "confident %": m["confident_percent"],
              "wall s": wall},
             {"generator": "the same, untrained", "fd": untrained["fd"], "confident %": untrained["confident_percent"]},
             {"generator": "real training digits (floor)", "fd": m["real_fd"],
              "confident %": m["real_confident_percent"]}]
    print(f"\n## Digits 8x8, DCGAN on the CPU; {m['feature_extractor']}; 449 samples vs 449 held-out digits\n")
    print(markdown(table, ["generator", "fd", "confident %", "wall s"]))
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "gan_digits.json").write_text(json.dumps({"table": table, "curve": [r for r in rows if "fd" in r]},
                                                         indent=2))


if __name__ == "__main__":
    main()
