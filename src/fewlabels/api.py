"""The Python API, in three names; the CLI is built on the same functions, with the same defaults.

    import fewlabels

    run = fewlabels.train("gan/grid25_best", out="runs/grid25", train={"steps": 2000})
    points = run.sample(1000, seed=0)            # (1000, 2) float32, in data space
    print(run.evaluate()["hq_percent"])

    run = fewlabels.load("runs/cartpole_ppo")    # any finished (or interrupted) run directory
    action = run.act(observation)                # RL: the greedy action, as Stable-Baselines3's predict
    run.evaluate(episodes=100)                   # {"mean_return", "std_return", "episodes"}

A config is a YAML path or a shipped name (`fewlabels.configs()` lists them). Overrides are
keyword arguments: a section as a dict (`train={"steps": 2000}`), a top-level key as a value
(`seed=3`); they are the CLI's `--set train.steps=2000 --set seed=3`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fewlabels.errors import UserError

RL_FAMILIES = ("tabular", "dqn", "pg")  # the families whose runs act in an environment
TRUNCATIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # the truncation curve's thresholds


def configs() -> dict[str, str]:
    """The shipped configs by name ("gan/grid25_best"), each with its one-line description."""
    from fewlabels.config import shipped_configs

    return shipped_configs()


def as_overrides(overrides: dict[str, Any]) -> list[str]:
    """Keyword overrides as the CLI's KEY=VALUE strings: {"train": {"steps": 5}, "seed": 3} ->
    ["train.steps=5", "seed=3"] (values written as JSON, which YAML reads back unchanged)."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += [f"{key}.{item}" for item in as_overrides(value)]
        else:
            out.append(f"{key}={json.dumps(value)}")
    return out


class Run:
    """A run directory: its folder (`path`), config (`cfg`), summary and metrics, and the trained
    experiment (`experiment`: networks, optimisers, environments), restored from the newest
    checkpoint the first time something needs it."""

    def __init__(self, path: str | Path, device: str = "auto", overrides: list[str] | None = None):
        from fewlabels.run import RunDir

        self.path = Path(path)
        self.device, self._overrides = device, list(overrides or [])
        self._run, self._loaded = RunDir(self.path), None
        if not self._run.config_path.is_file():
            raise UserError(f"{str(path)!r} is not a run directory (no config.yaml); pass the --out of a "
                            "`fewlabels train` run")
        self.last: dict | None = None  # what `train` returned, when this run came from it

    def _load(self):
        if self._loaded is None:
            from fewlabels.loop import open_run

            self._loaded = open_run(str(self.path), self.device, self._overrides)
        return self._loaded

    def __repr__(self) -> str:
        summary = self.summary or {}
        status, steps = summary.get("status", "not finished"), summary.get("steps")
        return f"Run({str(self.path)!r}, status={status!r}, steps={steps})"

    @property
    def cfg(self) -> Any:
        return self._load()[0]

    @property
    def experiment(self) -> Any:
        return self._load()[2]

    @property
    def summary(self) -> dict | None:
        """summary.json: status, steps, wall_seconds and the final metrics (None while training)."""
        return self._run.read_summary()

    @property
    def report(self) -> Path:
        return self._run.report_path

    def metrics(self) -> list[dict]:
        """The rows of metrics.jsonl: training logs (`kind` "train") and evaluations ("eval")."""
        return self._run.read_metrics()

    def sample(self, n: int, seed: int = 0, label: int | None = None, truncation: float | None = None) -> np.ndarray:
        """n samples in data space, float32: (n, D) points or (n, C, H, W) images in [-1, 1].
        Sampling settings (a diffusion sampler, say) are chosen when loading:
        `fewlabels.load(path, sampler={"name": "ddim", "steps": 50})`. GANs: `label` asks a
        conditional run for one class (else classes are balanced: sample_labelled says which);
        `truncation` T draws z from the normal truncated to |z_i| ≤ T (BigGAN's trick)."""
        return self.sample_labelled(n, seed, label, truncation)[0]

    def sample_labelled(self, n: int, seed: int = 0, label: int | None = None,
                        truncation: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """`sample`, with the labels a conditional GAN was asked for (None for other runs)."""
        if n < 1:
            raise UserError(f"n is {n}; give a positive number of samples")
        exp = self.experiment
        if not hasattr(exp, "sample_labelled"):
            if label is not None or truncation is not None:
                raise UserError(f"a class (--class) and a truncation (--truncation) apply to GAN runs; "
                                f"{str(self.path)!r} is a {self.cfg.family} run")
            return np.asarray(exp.sample(int(n), seed=int(seed)), dtype=np.float32), None
        x, labels = exp.sample_labelled(int(n), seed=int(seed), label=label, truncation=truncation)
        return np.asarray(x, dtype=np.float32), labels

    def truncation_curve(self, values: Sequence[float] = TRUNCATIONS) -> list[dict]:
        """A GAN's metrics (eval.*) against the truncation T of its z, one row per T: BigGAN's
        trade of variety (recall, FID) for typicality (precision, class consistency)."""
        exp = self.experiment
        if not hasattr(exp, "sample_labelled"):
            raise UserError(f"the truncation curve is for GAN runs; {str(self.path)!r} is a {self.cfg.family} run")
        return [{"truncation": float(t), **exp.evaluate(truncation=float(t))} for t in values]

    def evaluate(self, episodes: int | None = None, truncation: float | None = None) -> dict[str, float]:
        """The run's metrics computed afresh (the family's sample metrics; RL: the mean return of
        `episodes` greedy episodes, default eval.episodes). GANs: `truncation` T scores samples
        whose z is truncated to |z_i| ≤ T."""
        if truncation is not None:
            exp = self.experiment
            if not hasattr(exp, "sample_labelled"):
                raise UserError(f"a truncation (--truncation) applies to GAN runs; {str(self.path)!r} is a "
                                f"{self.cfg.family} run")
            return {**exp.evaluate(truncation=float(truncation)), "truncation": float(truncation)}
        if episodes is None:
            if self.cfg.family == "ssl":  # a classifier: accuracy, per class, and the confusion matrix
                return self.experiment.evaluate(confusion=True)
            return self.experiment.evaluate()
        if self.cfg.family not in RL_FAMILIES:
            raise UserError(f"episodes (--episodes) applies to RL runs; {str(self.path)!r} is a {self.cfg.family} "
                            "run, evaluated on eval.samples samples (--set eval.samples=N)")
        return self.experiment.evaluate(episodes=int(episodes))

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Semi-supervised (classifier) runs: class labels (int64) of images (N, C, H, W) in
        [-1, 1], the layout `sample` writes, by the run's averaged classifier."""
        if self.cfg.family != "ssl":
            raise UserError(f"predict is for classifier runs (family ssl); {str(self.path)!r} is a "
                            f"{self.cfg.family} run")
        exp = self.experiment
        x = np.asarray(images)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(exp.shape):
            raise UserError(f"the images have shape {x.shape}; this run classifies images of shape "
                            f"(N, {', '.join(map(str, exp.shape))}) in [-1, 1]")
        if x.dtype.kind not in "fiu":
            raise UserError(f"the images are of dtype {x.dtype}; give numbers (float32 in [-1, 1])")
        if not np.isfinite(x).all():
            raise UserError("the images hold NaN or infinite values; give finite pixels in [-1, 1]")
        return exp.classify(x.astype(np.float32))

    def act(self, observation: Any, deterministic: bool = True) -> Any:
        """RL runs: the action for one observation (or an array for a batch of them)."""
        exp = self.experiment
        if self.cfg.family == "tabular":
            policy = exp.greedy_policy()
            return policy[observation] if np.ndim(observation) == 0 else policy[np.asarray(observation)]
        if self.cfg.family not in RL_FAMILIES:
            raise UserError(f"act is for RL runs; {str(self.path)!r} is a {self.cfg.family} run (use sample)")
        obs = np.asarray(observation, dtype=np.uint8 if exp.pixels else np.float32)
        single = obs.shape == exp.obs_shape
        batch = obs[None] if single else obs
        if batch.shape[1:] != exp.obs_shape:
            raise UserError(f"observation has shape {obs.shape}; {self.cfg.env.id} gives {exp.obs_shape} "
                            f"(or a batch of them)")
        actions = exp.act(exp.prepare(batch, update=False), deterministic)
        return actions[0] if single else actions


def load(path: str | Path, device: str = "auto", sets: Sequence[str] = (), **overrides: Any) -> Run:
    """A trained run directory; `overrides` (or `sets`, KEY=VALUE strings as the CLI's --set) may
    only change how it is sampled or evaluated: eval={...}, and diffusion's sampler={...}."""
    return Run(path, device, [*sets, *as_overrides(overrides)])


def train(config: str | Path, out: str | Path | None = None, device: str = "auto", sets: Sequence[str] = (),
          **overrides: Any) -> Run:
    """Train (or resume) `config`, a YAML path or a shipped name, into `out` (default
    runs/CONFIG_NAME, as the CLI), and return the run; `run.last` is what training returned
    (its summary). A finished run is left exactly as it is. A run stopped by Ctrl-C or SIGTERM
    saves a checkpoint and raises fewlabels.errors.Interrupted (train again to resume).
    `sets`: overrides as KEY=VALUE strings (the CLI's --set), applied before the keyword ones."""
    from fewlabels import config as configlib
    from fewlabels.loop import train as train_loop

    cfg = configlib.load(config, [*sets, *as_overrides(overrides)])
    out = Path(out) if out is not None else Path("runs") / Path(str(config)).stem
    summary = train_loop(cfg, str(out), device=device, stop_raises=True)
    run = Run(out, device)
    run.last = summary
    return run
