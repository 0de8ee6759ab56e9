"""The lecture's BigGAN claim as a measurement: "GANs benefit dramatically from scaling: 2x-4x more
parameters, 8x larger batch size". BigGAN on Fashion-MNIST (configs/gan/fashion_biggan.yaml) with
the batch x1, x4, x8 (by gradient accumulation on one device: train.accumulate) and the width x1,
x2 (model.channels), compared at equal numbers of G updates and at equal images seen.

    python benchmarks/biggan_scaling.py --updates 600 --jobs 2          # CPU: about an hour on 2 cores
    python benchmarks/biggan_scaling.py --updates 20000 --device cuda --extractor inception   # a GPU

Runs (batch multiple, width multiple, G updates), N = --updates:
  equal G updates:   (1, 1, N) (4, 1, N) (8, 1, N) (1, 2, N) (8, 2, N)
  equal images seen: (4, 1, N/4) (8, 1, N/8) (8, 2, N/8), against (1, 1, N) and (1, 2, N)
(--grid full adds (4, 2, N) and (4, 2, N/4)). Every run starts from the same seed and config; only
the batch, the width and the number of updates change.

Each finished run is scored on --samples samples (classes balanced) against as many held-out
images: Fréchet distance, KID and precision/recall (k = 3) in the features of --extractor
(classifier: the small Fashion-MNIST classifier behind the project's FD; inception: InceptionV3,
the FID protocol, slow on a CPU), class consistency (% the classifier assigns to the class asked
for) and intra-class FD; beside them the real-vs-real floor and the wall time of training (not
scoring). --jobs J trains J runs at once, each on its own core with one thread (wall times are
then comparable with each other, not with a run that had the machine to itself).

Prints a markdown table and writes --out/scaling.json, scaling.md and scaling.png.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import markdown  # noqa: E402

LECTURE = [(1, 1, 1), (4, 1, 1), (8, 1, 1), (1, 2, 1), (8, 2, 1), (4, 1, 4), (8, 1, 8), (8, 2, 8)]
FULL = LECTURE + [(4, 2, 1), (4, 2, 4)]  # (batch x, width x, updates divided by)
COLUMNS = ["run", "batch", "width", "G updates", "images seen by D", "params G", "train s", "fd", "real_fd", "kid",
           "precision", "recall", "class_consistency", "real_class_consistency", "intra_fd", "real_intra_fd"]


def spec_name(batch: int, width: int, updates: int) -> str:
    return f"b{batch}_w{width}_u{updates}"


def _pin(cores: mp.Queue) -> None:
    """Worker start-up: one core of its own and one thread (a Linux affinity; elsewhere threads only)."""
    import torch

    core = cores.get()
    if hasattr(os, "sched_setaffinity") and core is not None:
        os.sched_setaffinity(0, {core})
    os.environ["FEWLABELS_MAX_THREADS"] = "1"
    torch.set_num_threads(1)


def train_one(job: dict) -> dict:
    """Train one run (resuming if its directory has one) and score it."""
    from fewlabels import config as configlib
    from fewlabels.loop import open_run, train

    a = job["args"]
    batch, width, updates = job["batch"], job["width"], job["updates"]
    out = Path(a["out"]) / spec_name(batch, width, updates)
    sets = [*a["set"], f"train.accumulate={batch}", f"model.channels={a['channels'] * width}",
            f"train.steps={updates}", "train.eval_every=0", "train.snapshot_every=0",
            f"train.checkpoint_every={max(1, updates // 4)}", "train.log_every=50",
            f"eval.samples={a['samples']}", f"eval.extractor={a['extractor']}", "train.threads=1"]
    cfg = configlib.load_shipped(a["config"], sets)
    t0 = time.perf_counter()
    summary = train(cfg, str(out), device=a["device"])
    wall = time.perf_counter() - t0
    _, _, exp = open_run(str(out), a["device"])
    m = summary["metrics"]
    extra = {} if "kid" in m else extra_scores(exp, a["samples"])  # InceptionV3 runs have KID and P/R
    row = {"run": spec_name(batch, width, updates), "batch": f"x{batch} ({cfg.train.batch_size * batch})",
           "width": f"x{width} ({4 * cfg.model.channels} ch)", "G updates": updates,
           "images seen by D": updates * cfg.train.batch_size * batch * cfg.train.n_critic,
           "params G": sum(p.numel() for p in exp.G.parameters()),
           "train s": round(wall - float(m.get("eval_seconds", 0.0)), 1), **extra}
    for key in COLUMNS:
        if key in m and key not in row:
            row[key] = m[key]
    return row


def extra_scores(exp, n: int) -> dict:
    """KID and precision/recall (k = 3) in the classifier's features, which the run's own evaluation
    (FD, class consistency, intra-class FD) does not compute."""
    from fewlabels.metrics.features import kernel_inception_distance, precision_recall

    feats = exp.metrics.features
    x, _ = exp.sample_labelled(n)
    fake = feats.embed(x)["features"].astype("float64")
    real = feats.embed(exp.data.holdout(n))["features"].astype("float64")
    kid, _ = kernel_inception_distance(fake, real, subsets=10, subset_size=min(1000, len(fake), len(real)))
    precision, recall = precision_recall(real, fake)
    return {"kid": kid, "precision": precision, "recall": recall}


def plot(rows: list[dict], path: Path) -> None:
    from fewlabels.viz import plots

    plt = plots.plt
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "fd", "Fréchet distance (lower is better)"),
                           (axes[1], "class_consistency", "class consistency %")):
        for width in sorted({r["_width"] for r in rows}):
            for equal, style in (("updates", "-"), ("images", "--")):
                pts = sorted((r["_batch"], r[key]) for r in rows if r["_width"] == width and key in r
                             and (r["_divisor"] == 1 if equal == "updates" else r["_divisor"] == r["_batch"]))
                if len(pts) > 1:
                    xs, ys = zip(*pts)
                    ax.plot(xs, ys, style, marker="o", ms=4, label=f"width x{width}, equal {equal}")
        floor = next((r.get(f"real_{key}") for r in rows if r.get(f"real_{key}") is not None), None)
        if floor is not None:
            ax.axhline(floor, ls=":", color="grey", lw=1, label="real vs real")
        ax.set_xscale("log", base=2)
        ax.set_xticks([1, 4, 8], ["x1", "x4", "x8"])
        ax.set_xlabel("batch (by accumulation)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    plots.save(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="gan/fashion_biggan.yaml", help="the base config (default: %(default)s)")
    p.add_argument("--updates", type=int, default=600, help="G updates N of the x1 runs (default: %(default)s)")
    p.add_argument("--channels", type=int, default=8, help="model.channels at width x1 (default: %(default)s)")
    p.add_argument("--grid", choices=["lecture", "full"], default="lecture")
    p.add_argument("--samples", type=int, default=5000, help="samples scored per run (default: %(default)s)")
    p.add_argument("--extractor", choices=["classifier", "inception"], default="classifier")
    p.add_argument("--device", default="cpu")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, one core each (default: 1)")
    p.add_argument("--out", default="runs/biggan_scaling")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides for every run")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    specs = FULL if args.grid == "full" else LECTURE
    jobs = [{"batch": b, "width": w, "divisor": d, "updates": max(1, args.updates // d), "args": vars(args)}
            for b, w, d in specs]
    # the longest first, so the pool finishes together
    jobs.sort(key=lambda j: -j["batch"] * j["width"] ** 2 * j["updates"])
    t0 = time.perf_counter()
    if args.jobs > 1:
        ctx = mp.get_context("spawn")
        cores = ctx.Queue()
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None] * args.jobs
        for k in range(args.jobs):
            cores.put(available[k % len(available)])
        with ctx.Pool(args.jobs, initializer=_pin, initargs=(cores,), maxtasksperchild=None) as pool:
            rows = pool.map(train_one, jobs, chunksize=1)
    else:
        rows = [train_one(j) for j in jobs]
    for row, job in zip(rows, jobs):
        row.update(_batch=job["batch"], _width=job["width"], _divisor=job["divisor"])
    rows.sort(key=lambda r: (r["_divisor"] != 1, r["_width"], r["_batch"]))
    table = markdown(rows, COLUMNS)
    print(table)
    print(f"\n{len(rows)} runs in {time.perf_counter() - t0:.0f} s; extractor {args.extractor}, {args.samples} samples")
    (out / "scaling.md").write_text(table + "\n")
    (out / "scaling.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    plot(rows, out / "scaling.png")


if __name__ == "__main__":
    main()
