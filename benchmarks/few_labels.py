"""Learning with few labels: test error of the semi-supervised GAN, supervised-only and FixMatch
on the same labelled images, over 5 label splits (split seeds 0-4, fixed), for each dataset and
number of labels per class. Every run trains the method's shipped config (configs/ssl/) with
the same classifier network; one table (mean ± std of test error, wall time) and one plot of
error against labels per class.

    python benchmarks/few_labels.py                                   # digits, 10 labels per class
    python benchmarks/few_labels.py --datasets fashion --labels 10 100
    python benchmarks/few_labels.py --datasets digits --splits 0 1 --set train.steps=500 --tag quick   # a variant

Runs go to benchmarks/results/few_labels/<dataset>_<method>_L<labels>_s<split>/ and resume or
are reused from there (delete a folder to train it again). One thread each (FEWLABELS_MAX_THREADS=1);
--workers N trains N runs side by side. Writes benchmarks/results/few_labels_<datasets>.json and .png;
runs already in that JSON for other labels or splits are kept, so `--labels 100` adds to the L10 table.
A run that fails is named at the end; the table and plot still hold every run that finished.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import markdown  # noqa: E402

METHODS = ("ssl_gan", "supervised", "fixmatch")
SPLITS = (0, 1, 2, 3, 4)


def train_one(dataset: str, method: str, labels: int, split: int, sets: list[str], out_root: Path,
              tag: str = "") -> dict:
    out = out_root / f"{dataset}_{method}_L{labels}_s{split}{'_' + tag if tag else ''}"
    cmd = [sys.executable, "-m", "fewlabels", "train", f"ssl/{dataset}_{method}", "--out", str(out),
           "--device", "cpu", "--set", f"data.labels_per_class={labels}", "--set", f"data.split_seed={split}"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ, FEWLABELS_MAX_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        raise SystemExit(f"{out.name} failed: {last}")
    summary = json.loads((out / "summary.json").read_text())
    return {"dataset": dataset, "method": method, "labels_per_class": labels, "split_seed": split,
            "test_error_pct": summary["metrics"]["test_error_pct"], "training_seconds": summary.get("training_seconds"),
            "steps": summary["steps"], "benchmark_seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["digits"], choices=["digits", "fashion"])
    ap.add_argument("--labels", nargs="+", type=int, default=[10], help="labels per class (default: 10)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--splits", nargs="+", type=int, default=list(SPLITS), help="split seeds (default: 0-4)")
    ap.add_argument("--set", action="append", default=[], help="a config override for every run")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "few_labels"))
    ap.add_argument("--tag", default="", help="a name for a variant (--set ...): its runs and table apart")
    args = ap.parse_args()
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    jobs = [(d, m, L, s) for d in args.datasets for L in args.labels for s in args.splits for m in args.methods]

    def attempt(job):
        try:
            return train_one(*job, args.set, out_root, args.tag)
        except SystemExit as e:  # one failed run must not lose the others' table
            print(e, file=sys.stderr)
            return str(e)

    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(attempt, jobs))
    runs = [r for r in results if isinstance(r, dict)]
    failed = [r for r in results if isinstance(r, str)]
    stem = out_root.parent / ("few_labels_" + "_".join(args.datasets) + (f"_{args.tag}" if args.tag else ""))
    runs = merge_earlier(runs, stem.with_suffix(".json"))
    table = []
    for d in args.datasets:
        for L in sorted({r["labels_per_class"] for r in runs if r["dataset"] == d}):
            for m in args.methods:
                rs = [r for r in runs if (r["dataset"], r["labels_per_class"], r["method"]) == (d, L, m)]
                if not rs:
                    continue
                errors = [r["test_error_pct"] for r in rs]
                secs = [r["training_seconds"] for r in rs]
                table.append({"dataset": d, "labels per class": L, "method": m, "splits": len(rs),
                              "test error % (mean ± std)": f"{statistics.mean(errors):.2f} ± "
                                                           f"{statistics.stdev(errors) if len(errors) > 1 else 0:.2f}",
                              "training s (mean)": round(statistics.mean(secs), 1)})
    if table:
        print(markdown(table, list(table[0])))
        stem.with_suffix(".json").write_text(json.dumps({"runs": runs, "table": table}, indent=2) + "\n")
        plot(runs, args, stem.with_suffix(".png"))
    if failed:
        raise SystemExit(f"{len(failed)} of {len(jobs)} runs failed: " + "; ".join(failed))


def merge_earlier(runs: list[dict], path: Path) -> list[dict]:
    """This invocation's runs plus those an earlier one wrote to `path` for other (dataset, method,
    labels, split): a new figure never silently drops an old one."""
    if not path.exists():
        return runs
    key = lambda r: (r["dataset"], r["method"], r["labels_per_class"], r["split_seed"])  # noqa: E731
    new = {key(r) for r in runs}
    earlier = [r for r in json.loads(path.read_text())["runs"] if key(r) not in new]
    return sorted(earlier + runs, key=lambda r: (r["dataset"], r["labels_per_class"], r["split_seed"],
                                                  METHODS.index(r["method"])))


def plot(runs: list[dict], args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.datasets), figsize=(5 * len(args.datasets), 3.5), squeeze=False)
    for ax, d in zip(axes.flat, args.datasets):
        for m in args.methods:
            xs, ys, es = [], [], []
            for L in sorted({r["labels_per_class"] for r in runs if (r["dataset"], r["method"]) == (d, m)}):
                errors = [r["test_error_pct"] for r in runs
                          if (r["dataset"], r["method"], r["labels_per_class"]) == (d, m, L)]
                xs.append(L)
                ys.append(statistics.mean(errors))
                es.append(statistics.stdev(errors) if len(errors) > 1 else 0)
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=m)
        ax.set_xscale("log")
        ax.set_xlabel("labels per class")
        ax.set_ylabel("test error %")
        ax.set_title(d)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
