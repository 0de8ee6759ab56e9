"""2D GAN benchmark: every shipped ring8/grid25 config over seeds, against published rows and
the real-data floor, plus our training speed against a plain PyTorch loop in the same run.

    python benchmarks/gan2d.py                      # all configs, 5 seeds (about 30 minutes)
    python benchmarks/gan2d.py --seeds 1 --only grid25_best
    python benchmarks/gan2d.py --floors-only          # the real-data floors alone (about a minute)

Prints markdown tables and writes benchmarks/results/gan2d.json. Floors are real data against
disjoint real data at the configs' sample counts, mean ± std over independent draws
(fewlabels.metrics.samples.SampleMetrics.floor, cached per dataset).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import CONFIGS, fmt, markdown  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.data.config import make_data  # noqa: E402
from fewlabels.data.toy2d import make_points  # noqa: E402
from fewlabels.gan.nets import mlp  # noqa: E402
from fewlabels.loop import train  # noqa: E402
from fewlabels.metrics.samples import SampleMetrics  # noqa: E402

# Published rows (PacGAN, Lin et al. 2018, Table 1): modes captured and high-quality %.
PUBLISHED = [
    {"config": "PacGAN paper: GAN", "grid25 modes": 17.3, "grid25 HQ %": 94.8, "ring8 modes": 6.3, "ring8 HQ %": 98.2},
    {"config": "PacGAN paper: PacGAN4", "grid25 modes": 24.8, "grid25 HQ %": 93.6, "ring8 modes": 7.8,
     "ring8 HQ %": 95.9},
]
KEYS = ("modes", "modes_20", "hq_percent", "reverse_kl", "emd")


def run_config(path: Path, seed: int) -> dict:
    cfg = configlib.load(path, [f"seed={seed}", "train.snapshot_every=0", "train.eval_every=0",
                                "train.checkpoint_every=1000000"])
    with tempfile.TemporaryDirectory() as out:
        summary = train(cfg, out, device="cpu")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    m = summary["metrics"]
    # Training wall time: the last loss line, before the final evaluation and the report.
    train_wall = max(r["wall_seconds"] for r in rows if "loss_g" in r)
    return {**{k: m[k] for k in KEYS}, "wall": train_wall, "steps_per_s": cfg.train.steps / train_wall}


def real_floor(path: Path) -> dict:
    """The config's dataset scored against itself under the config's eval protocol:
    {metric: mean, metric_std: std, draws: n}."""
    cfg = configlib.load(path)
    metrics = SampleMetrics(make_data(cfg.data), False, cfg.eval.samples, cfg.eval.emd_points, torch.device("cpu"))
    return {k.removeprefix("real_"): v for k, v in metrics.floor().items()}


def floor_row(name: str, floor: dict) -> dict:
    """A table row of 'mean ± std' cells."""
    return {"config": f"{name} real data (floor, {floor['draws']} draws)",
            **{k: f"{fmt(floor[k])} ± {floor[f'{k}_std']:.2g}" for k in KEYS}}


def plain_loop_steps_per_second(width: int, depth: int, batch: int, steps: int = 1500) -> float:
    """The textbook loop: separate D calls on real and fake, BCE, default Adam, default threads,
    a fresh fake batch for G's step; same networks, data and batch as ours."""
    torch.set_num_threads(_default_threads)  # whatever torch picks by default
    torch.manual_seed(0)
    data = make_points("grid25")
    gen = torch.Generator().manual_seed(0)
    G, D = mlp(2, 2, width, depth), mlp(2, 1, width, depth)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
    t0 = None
    for step in range(steps + 100):
        if step == 100:
            t0 = time.perf_counter()
        real = data.sample(batch, gen)
        fake = G(torch.randn(batch, 2)).detach()
        opt_d.zero_grad()
        loss_d = bce(D(real), ones) + bce(D(fake), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad()
        loss_g = bce(D(G(torch.randn(batch, 2))), ones)
        loss_g.backward()
        opt_g.step()
        loss_d.item(), loss_g.item()
    return steps / (time.perf_counter() - t0)


def ours_steps_per_second(path: Path, steps: int = 1500, overrides: list[str] = ()) -> float:
    """Steady-state rate of `fewlabels train`: steps between the log lines at step 100 and the
    last step (start-up, imports and the final evaluation excluded, as for the plain loop)."""
    cfg = configlib.load(path, [f"train.steps={steps + 100}", "train.snapshot_every=0", "train.eval_every=0",
                                "train.checkpoint_every=1000000", "train.log_every=100", *overrides])
    with tempfile.TemporaryDirectory() as out:
        train(cfg, out, device="cpu")
        rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    t = {r["step"]: r["wall_seconds"] for r in rows if "loss_g" in r}
    return steps / (t[steps + 100] - t[100])


_default_threads = torch.get_num_threads()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="config names (e.g. grid25_best)")
    ap.add_argument("--speed-steps", type=int, default=2000)
    ap.add_argument("--speed-only", action="store_true", help="only the speed table")
    ap.add_argument("--floors-only", action="store_true", help="only the real-data floors (no training)")
    args = ap.parse_args()
    files = sorted((CONFIGS / "gan").glob("*.yaml"))
    files = [f for f in files if f.stem.split("_")[0] in ("ring8", "grid25")]
    if args.only:
        files = [f for f in files if f.stem in args.only]
    if args.floors_only:
        floors = {f.stem.split("_")[0]: real_floor(f) for f in files}
        print("\n## Real-data floors (mean ± std over draws of disjoint real sets)\n")
        print(markdown([floor_row(ds, fl) for ds, fl in sorted(floors.items())], ["config", *KEYS]))
        return
    if args.speed_only:
        files = []

    table, results = [], {}
    floors = {}
    for f in files:
        runs = [run_config(f, s) for s in range(args.seeds)]
        mean = {k: float(np.mean([r[k] for r in runs])) for k in (*KEYS, "wall", "steps_per_s")}
        mean["max wall"] = float(max(r["wall"] for r in runs))
        results[f.stem] = {"mean": mean, "runs": runs}
        floors[f.stem.split("_")[0]] = real_floor(f)
        table.append({"config": f.stem, **mean})
        print(f"{f.stem}: " + " ".join(f"{k}={fmt(v)}" for k, v in mean.items()), file=sys.stderr, flush=True)
    for ds, floor in sorted(floors.items()):
        table.append(floor_row(ds, floor))
    cols = ["config", *KEYS, "wall", "max wall", "steps_per_s"]
    print(f"\n## 2D GANs, mean of {args.seeds} seeds (wall: training seconds per run, one torch thread)\n")
    print(markdown(table, cols))
    print("\n## Published (PacGAN Table 1; their networks and budgets, for reference)\n")
    print(markdown(PUBLISHED, list(PUBLISHED[0])))

    speed = []
    # Same algorithm on both sides (non-saturating loss, no penalty), same networks and batch.
    path = CONFIGS / "gan" / "grid25_nonsaturating.yaml"
    batch = configlib.load(path).train.batch_size
    for width in (128, 64):
        plain = plain_loop_steps_per_second(width, 3, batch, args.speed_steps)
        row = {"network": f"3x{width} MLP", "batch": batch, "plain loop steps/s": plain}
        for label, extra in (("1 thread", ["train.threads=1"]), ("2 threads", ["train.threads=2"]),
                             ("1 thread bf16", ["train.threads=1", "train.precision=bf16"])):
            ours = ours_steps_per_second(path, args.speed_steps, [f"model.width={width}", *extra])
            row[f"fewlabels {label}"] = ours
            row[f"x ({label})"] = ours / plain
        speed.append(row)
    print("\n## Training speed against a plain PyTorch loop (same networks and batch, same run)\n")
    print(markdown(speed, list(speed[0])))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "gan2d.json").write_text(json.dumps({"configs": results, "floors": floors, "speed": speed,
                                                "published": PUBLISHED}, indent=2))


if __name__ == "__main__":
    main()
