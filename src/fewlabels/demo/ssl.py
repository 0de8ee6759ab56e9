"""The demo's few-labels part: on 8x8 digits with 10 labels per class, the semi-supervised GAN
beside the same classifier trained on the labels alone; accuracy curves and a confusion matrix."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from fewlabels.config import load_shipped as shipped_config
from fewlabels.report import Section, images_html, table


def few_labels_part(out: Path, quick: bool) -> list[Section]:
    from fewlabels.loop import train
    from fewlabels.run import RunDir
    from fewlabels.viz.plots import curves

    steps = 20 if quick else DEMO_STEPS
    rows, curve_rows = [], []
    for method in ("ssl_gan", "supervised"):
        cfg = shipped_config(f"ssl/digits_{method}.yaml", [f"train.steps={steps}",
                                                            f"train.eval_every={max(1, steps // 8)}", *DEMO_SETS])
        print(f"fewlabels demo: training digits_{method}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        summary = train(cfg, str(out / f"digits_{method}"), device="cpu", stop_raises=True)
        m = summary["metrics"]
        rows.append({"method": method, "labelled images": 10 * cfg.data.labels_per_class,
                     "test accuracy (averaged weights)": m.get("test_accuracy"),
                     "test error %": m.get("test_error_pct"), "seconds": round(time.perf_counter() - t0, 1)})
        curve_rows += [{"step": r["step"], method: r["test_accuracy"]}
                       for r in RunDir(out / f"digits_{method}").read_metrics() if r.get("kind") == "eval"]
    fig = curves(curve_rows, ["ssl_gan", "supervised"], out / "few_labels_accuracy.png",
                 "test accuracy on held-out digits, 10 labels per class")
    confusion = out / "digits_ssl_gan" / "samples" / "confusion.png"
    return [Section("Learning with few labels: the discriminator as a classifier",
                    text="100 labelled digits (10 per class) and 1,347 unlabelled ones. The semi-supervised GAN's "
                         "discriminator is a 10+1-class classifier (Salimans et al. 2016): it learns the classes "
                         "from the labels and, from every image, to tell real from generated. The baseline is the "
                         "same network on the 100 labels alone. Held-out digits measure both.",
                    html=table(rows) + images_html([fig, confusion if confusion.exists() else None])
                    + '<p><a href="digits_ssl_gan/report.html">digits_ssl_gan report</a> · '
                      '<a href="digits_supervised/report.html">digits_supervised report</a></p>')]


# The shipped digits configs with smaller networks and 800 updates, so the part fits its 90 s
# (the learning test in tests/test_ssl.py trains the same).
DEMO_STEPS = 800
DEMO_SETS = ["model.d_hidden=[500,250,250]", "model.g_hidden=[250,250]"]
