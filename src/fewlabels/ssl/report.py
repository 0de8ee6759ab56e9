"""The semi-supervised run's report: test accuracy over training (the averaged classifier and D
itself), the confusion matrix and per-class accuracy of the last evaluation, the labelled images,
and for the SSL GAN its samples over training. Also writes the split as labelled.npy."""

from __future__ import annotations

import numpy as np

from fewlabels import files
from fewlabels.errors import UserError
from fewlabels.report import Section, read_snapshots, table
from fewlabels.viz.plots import curves, image_grid, image_snapshots, plt, save


def confusion_figure(matrix: np.ndarray, path, title: str):
    k = len(matrix)
    fig, ax = plt.subplots(figsize=(0.45 * k + 2, 0.45 * k + 1.6))
    share = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    return save(fig, path)


def sections(exp, run) -> list[Section]:
    out = []
    if exp.labelled is not None:
        files.save_npy_atomic(run.root / "labelled.npy", exp.labelled, "labelled indices")
    rows = run.read_metrics()
    evals = [r for r in rows if r.get("kind") == "eval"]
    fig = curves(evals, ["test_accuracy", "test_accuracy_online"], run.samples / "accuracy.png",
                 f"{exp.cfg.method}: test accuracy, {exp.cfg.data.labels_per_class} labels per class")
    if fig:
        out.append(Section("Test accuracy over training", image=fig,
                           text="test_accuracy: the Polyak average of the classifier's weights (train.ema); "
                                "test_accuracy_online: the network being trained."))
    result = exp.evaluate(confusion=True)
    matrix = np.asarray(result["confusion"])
    fig = confusion_figure(matrix, run.samples / "confusion.png",
                           f"test accuracy {100 * result['test_accuracy']:.2f} % ({matrix.sum()} held-out images)")
    per_class = [{"class": k, "accuracy": result[f"accuracy_class_{k}"], "images": int(matrix[k].sum())}
                 for k in range(exp.classes)]
    out.append(Section("Confusion matrix and per-class accuracy", image=fig, html=table(per_class)))
    fig = curves(rows, [k for k in ("loss_d", "loss_unlabelled", "loss_g", "train_accuracy", "confident")
                        if any(k in r for r in rows)], run.samples / "losses.png", "training losses")
    if fig:
        out.append(Section("Losses", image=fig))
    try:
        train, labels = exp.data.train, exp.data.train_labels
    except UserError:  # the data moved since training: the report goes without the labelled images
        train = None
    if train is not None and exp.labelled is not None:
        order = np.argsort(labels[exp.labelled], kind="stable")
        per = exp.cfg.data.labels_per_class
        fig = image_grid(train[exp.labelled[order]][:20 * min(per, 20)], run.samples / "labelled.png",
                         columns=min(per, 20))
        out.append(Section(f"The labelled images ({len(exp.labelled)}; labelled.npy holds their indices)", image=fig))
    fig = image_snapshots(read_snapshots(run.samples), run.samples / "samples.png")
    if fig:
        out.append(Section("Generated samples over training", image=fig))
    return out
