"""The one training loop. A family supplies an *experiment* (its nets, optimisers and one
`train_step`); this loop seeds, resumes, logs, evaluates, checkpoints and reports, the same
way for every family.

An experiment provides:
    signature() -> str                  architecture, to refuse a foreign checkpoint
    state_dict() / load_state_dict(s)   everything to resume bitwise (weights, optimisers, RNGs)
    train_step(step) -> dict[str, Tensor]  one update; scalar losses to log
    steps_per_call (optional int)       how far one train_step advances `step` (RL: environment
                                        steps per rollout); every `*_every` fires when crossed
    evaluate() -> dict[str, float]      the family's sample metrics (with the real-data floor)
    snapshot(step, folder)              what the report draws (samples over training)
    sample(n, seed) -> np.ndarray       n samples in data space
    report_sections(run) -> list        figures and tables for report.html
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch

from fewlabels import checkpoint, distributed
from fewlabels import config as configlib
from fewlabels.errors import Interrupted, UserError
from fewlabels.run import Progress, RunDir, StopSignals, number


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""

    on_every_rank = True  # the losses are agreed over ranks (distributed.agree): all see the NaN



def run_threads(configured: int) -> int:
    """The torch threads a run uses: the config's `train.threads` (0: torch's default), at most
    FEWLABELS_MAX_THREADS when that is set. Processes that share the cores (pytest-xdist workers,
    runs side by side in a benchmark) set it to 1: two processes of two OpenMP threads each on two
    cores spin against each other and ran 15x slower here."""
    cap = os.environ.get("FEWLABELS_MAX_THREADS", "")
    if not cap.isdigit() or int(cap) < 1:
        return configured
    return min(configured, int(cap)) if configured > 0 else int(cap)


def use_threads(cfg: Any) -> None:
    """Set torch's thread count from the run's `train.threads` (capped as in `run_threads`):
    every verb that runs a model (train, sample, eval) goes through here."""
    threads = run_threads(cfg.train.threads)
    if threads > 0:
        # Measured on 2 cores: tiny networks run as fast or faster on one thread (DESIGN.md).
        torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but this machine has no CUDA GPU; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise UserError(f"--device {name!r} is unknown; valid: auto, cpu, cuda")
    return torch.device(name)


def build_experiment(cfg: Any, device: torch.device):
    module, name = cfg.EXPERIMENT.split(":")
    return getattr(importlib.import_module(module), name)(cfg, device)


def restore(exp: Any, cfg: Any, path) -> int:
    """Load a checkpoint into `exp` (and the global RNGs); return its step."""
    state, info = checkpoint.load(path, expect={"family": cfg.family, "signature": exp.signature()})
    try:
        checkpoint.set_rng_state(state["rng"])  # first: an experiment may derive its own streams from them
        exp.load_state_dict(state["experiment"])
        return int(info["step"])
    except torch.OutOfMemoryError:
        raise  # the device is full, the checkpoint may be fine
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as e:
        # The header matched this model, so what is inside was garbled (or written by hand).
        raise UserError(f"checkpoint {str(path)!r} is corrupt: its contents do not restore this model "
                        f"({type(e).__name__}); delete it (older checkpoints beside it are used instead) "
                        "or start a new --out") from e


def save(run: RunDir, exp: Any, cfg: Any, step: int) -> None:
    state = {"experiment": exp.state_dict(), "rng": checkpoint.rng_state()}
    info = {"family": cfg.family, "signature": exp.signature(), "step": step}
    checkpoint.save(run.checkpoint_path(step), state, info)
    run.prune_checkpoints()


def open_run(out: str, device: str = "auto", overrides: list[str] | None = None):
    """(cfg, run, experiment) of an existing run directory, restored from its newest checkpoint.
    `overrides` (KEY=VALUE) may change how the run is sampled and evaluated (eval.*, and the
    family's SAMPLING_SECTIONS such as diffusion's sampler.*), never what was trained."""
    run = RunDir(out)
    if not run.config_path.is_file():
        raise UserError(f"{out!r} is not a run directory (no config.yaml); pass the --out of a `fewlabels train` run")
    overrides = list(overrides or [])
    data = configlib.read_yaml(run.config_path)
    source = str(run.config_path)
    family = configlib.family_config_class(data.get("family"), source) if isinstance(data.get("family"), str) else None
    sections = ("eval", *getattr(family, "SAMPLING_SECTIONS", ()))
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if "." not in key or key.split(".")[0] not in sections:
            examples = "e.g. eval.samples=10000" + (", sampler.name=ddim" if "sampler" in sections else "")
            raise UserError(f"--set {item!r} would change the trained run; here only "
                            f"{' and '.join(s + '.*' for s in sections)} keys can be set ({examples})")
    configlib.apply_overrides(data, overrides)
    if family is not None:
        configlib.resolve_paths(family, data, Path.cwd())  # a file named in --set, from where it was typed
    cfg = configlib.from_dict(data, source + (" with --set" if overrides else ""))
    latest = run.latest_checkpoint()
    if latest is None:
        raise UserError(f"run {out!r} has no checkpoint yet; train it first (fewlabels train CONFIG --out {out})")
    use_threads(cfg)
    shape = run.read_data_shape()
    if shape and hasattr(cfg, "data"):
        cfg.data.known_shape = shape  # the data is loaded only if something needs more than its shape
    exp = build_experiment(cfg, resolve_device(device))
    restore(exp, cfg, latest)
    return cfg, run, exp


def train(cfg: Any, out: str, device: str = "auto", stop_raises: bool = False) -> dict:
    dev = resolve_device(device)
    distributed.init(dev)
    if distributed.world_size() > 1:
        why = cfg.torchrun_refusal() if hasattr(cfg, "torchrun_refusal") else (
            None if getattr(cfg, "DISTRIBUTED", False) else f"family {cfg.family!r} does not train under torchrun yet")
        if why:
            raise UserError(f"{why}; run it as one process")
    main = distributed.is_main()  # rank 0 alone writes the run directory
    run = RunDir(out).check(cfg)  # every rank: the same decisions (and cfg's inherited horizon)
    done = run.completed(cfg.train.steps, cfg.train.max_minutes)
    if done is not None:  # nothing to train: the run directory is left exactly as it is
        if main:
            longer = "raise train.steps" + (" or train.max_minutes" if cfg.train.max_minutes else "")
            print(f"fewlabels: {out} is complete (step {done['steps']} of {cfg.train.steps}); nothing to do; "
                  f"{longer} to train it longer", file=sys.stderr)
        distributed.finish()
        return {**done, "complete": True}
    t = cfg.train
    use_threads(cfg)
    checkpoint.seed_everything(cfg.seed)
    # The run directory is written only once the experiment is built (its data found) and its
    # checkpoint restored: a typo in data.path, or a corrupt checkpoint, changes nothing on disk.
    exp = build_experiment(cfg, dev)
    start = 0
    latest = run.latest_checkpoint()
    if latest is not None:
        start = restore(exp, cfg, latest)
        print(f"fewlabels: resuming {out} from step {start} ({latest.name})", file=sys.stderr)
        if main and t.horizon != t.steps:
            print(f"fewlabels: its schedules (learning rate, ε, clip) run over the first {t.horizon} steps "
                  f"(train.schedule_steps: by default the length it started with) and hold their final values "
                  f"to step {t.steps}", file=sys.stderr)
    if main:
        run.create(cfg)
        run.truncate_metrics(start)
        if getattr(exp, "data", None) is not None:
            from fewlabels.data.config import shape_of

            run.write_data_shape(shape_of(exp.data))
    if start >= t.steps:
        print(f"fewlabels: {out} already reached step {start} of {t.steps}; evaluating it and writing its report",
              file=sys.stderr)

    status, step, last = "completed", start, {}
    stride = int(getattr(exp, "steps_per_call", 1))
    # Cumulative seconds spent evaluating, so that training time = wall_seconds - eval_seconds.
    eval_seconds = max((number(r, "eval_seconds") for r in run.read_metrics()), default=0.0) if main else 0.0

    def evaluate() -> dict:
        nonlocal eval_seconds
        t0 = time.perf_counter()
        values = exp.evaluate()
        eval_seconds += time.perf_counter() - t0
        return {**values, "eval_seconds": round(eval_seconds, 4)}

    previous = start
    budget = t.max_minutes * 60

    def training_seconds() -> float:
        return run.wall_seconds() - eval_seconds

    def out_of_time() -> bool:
        """train.max_minutes reached (rank 0's clock decides; `agree` tells every rank)."""
        return bool(budget) and main and training_seconds() >= budget

    def crossed(every: int) -> bool:
        """Did the last call pass a multiple of `every`? (step % every == 0 when stride is 1)"""
        return bool(every) and step // every > previous // every

    progress = Progress(t.steps, start, desc=cfg.name or cfg.family)
    try:
        with StopSignals() as stop:
            while step < t.steps:
                previous, step = step, step + stride
                # Under torchrun: the global batch's mean losses on every rank, and one stop decision.
                values, stopping, timed_out = distributed.agree(exp.train_step(step), stop.received is not None,
                                                                out_of_time())
                bad = [k for k, v in values.items() if not math.isfinite(v)]
                if bad:
                    kept = run.latest_checkpoint()
                    where = f"the last good checkpoint {kept.name} is kept" if kept else "no checkpoint was written"
                    raise TrainingDiverged(f"training diverged at step {step}: {bad[0]} is {values[bad[0]]}; "
                                           f"{where}; lower the learning rate or add a Lipschitz constraint")
                done = step >= t.steps or timed_out
                if main and (crossed(t.log_every) or done):
                    run.log(step, values)
                    progress.update(step, values)
                if main and crossed(t.eval_every) and not done:
                    last = evaluate()
                    run.log(step, last, kind="eval")
                if main and t.snapshot_every and (crossed(t.snapshot_every) or done):
                    exp.snapshot(step, run.samples)
                if main and (crossed(t.checkpoint_every) or done or stopping):
                    save(run, exp, cfg, step)
                if stopping:
                    status = "interrupted"
                    break
                if timed_out:
                    if main:
                        print(f"fewlabels: train.max_minutes ({t.max_minutes:g}) reached at step {step}",
                              file=sys.stderr)
                    break
    except TrainingDiverged:
        if main:
            run.write_summary("diverged", step, {})
        run.close()
        raise
    except RuntimeError as e:
        if not distributed.peer_failed(e):
            raise
        # Another process raised or was killed (its own error is printed above by torchrun):
        # this one says so in one sentence; every checkpoint already written stays as it is.
        run.close()
        kept = run.latest_checkpoint()
        where = f"the last good checkpoint {kept.name} is kept" if kept else "no checkpoint was written"
        raise UserError(f"another process of this torchrun stopped during step {step} (its error is above); "
                        f"{where}; run the same command again to resume") from None
    finally:
        progress.close()

    if not main:
        distributed.finish()  # waits for rank 0's evaluation and report
        return {"status": status, "steps": step, "rank": distributed.rank()}
    if status == "completed":
        last = evaluate()
        run.log(step, last, kind="eval")
    summary = run.write_summary(status, step, last, training_seconds=round(training_seconds(), 3))
    from fewlabels.report import write_report
    write_report(run, cfg, exp)
    run.close()
    distributed.finish()
    if status == "interrupted":
        print(f"fewlabels: stopped at step {step}; run the same command again to resume", file=sys.stderr)
        summary["exit_code"] = 128 + (stop.received or signal.SIGINT)
        if stop_raises:
            raise Interrupted(summary)
    return summary
