"""2D diffusion benchmark: DDPM on the swiss roll and grid25 against the real-data floor and the
best GAN, DDIM steps against EMD and time, and the same MLP trained with diffusers'
DDPMScheduler side by side with ours (same steps, seeds, data stream and initial weights).

    pip install -e '.[bench]'                       # diffusers, pinned in constraints.txt
    python benchmarks/diffusion2d.py                # 3 seeds (about 20 minutes on 2 cores)
    python benchmarks/diffusion2d.py --seeds 1 --steps 3000 --only swissroll
    python benchmarks/diffusion2d.py --floors-only  # the real-data floors alone (about a minute)

Floors are real data against disjoint real data at the same sample counts, mean ± std over
independent draws (fewlabels.metrics.samples.SampleMetrics.floor, cached per dataset).

Prints markdown tables and writes benchmarks/results/diffusion2d.json.

Fairness of the diffusers side: `clip_sample=False` (its default True squashes unbounded 2D data
into [-1, 1]), the same linear β schedule, fixed_small variance (our default σ² = β̃_t), the same
MLP class, seed, data stream, Adam settings and learning-rate decay, gradient clipping and EMA decay (diffusers'
EMAModel, whose warm-up (1 + n)/(10 + n) is ours). Its training is timed twice: written as
diffusers' own training example writes it (torch's default threads, AdamW, EMAModel without
foreach), and with our torch settings (one thread, fused Adam, foreach EMA), which isolates
what the scheduler and the loop cost.
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
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from common import CONFIGS, markdown  # noqa: E402
from fewlabels import config as configlib  # noqa: E402
from fewlabels.data.config import make_data  # noqa: E402
from fewlabels.diffusion.config import SamplerConfig  # noqa: E402
from fewlabels.diffusion.nets import MLPDenoiser  # noqa: E402
from fewlabels.loop import open_run, train  # noqa: E402
from fewlabels.metrics.distances import emd  # noqa: E402
from fewlabels.metrics.mixture import mode_metrics  # noqa: E402
from fewlabels.metrics.samples import SampleMetrics  # noqa: E402

DATASETS = ("swissroll", "grid25")
MODE_KEYS = ("modes", "modes_20", "hq_percent", "reverse_kl")
STEP_TABLE = (10, 20, 50, 100)
SAMPLE_SEEDS = 20  # grid25: one draw's EMD varies by ±25 % (mode counts are multinomial)
EMD_DRAWS = 5
DEFAULT_THREADS = torch.get_num_threads()


def mean_std(values) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


# ---- ours -------------------------------------------------------------------------------
def train_ours(name: str, seed: int, steps: int, out: str):
    cfg = configlib.load(CONFIGS / "diffusion" / f"{name}.yaml",
                         [f"seed={seed}", f"train.steps={steps}", "train.snapshot_every=0", "train.eval_every=0",
                          "train.checkpoint_every=1000000", "train.log_every=100"])
    train(cfg, out, device="cpu")
    rows = [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    t = {r["step"]: r["wall_seconds"] for r in rows if "loss" in r}
    rate = (steps - 100) / (t[steps] - t[100])  # steady state: start-up and evaluation excluded
    _, _, exp = open_run(out, "cpu")
    return cfg, exp, rate


def sample_metrics(sample, data, seed: int) -> dict:
    """EMD: mean over EMD_DRAWS draws of 1,000 samples against the same 1,000 held-out points (one
    draw's EMD varies by ±15 % on the swiss roll); modes: 2,500 samples (PacGAN protocol). The
    sampling seeds depend on the training seed, so seeds are independent draws (both sides share them)."""
    held, base = data.holdout(1000), 1000 * (seed + 1)
    out = {"emd": float(np.mean([emd(sample(1000, base + k), held) for k in range(EMD_DRAWS)]))}
    if data.modes is not None:
        out.update(mode_metrics(sample(2500, base + 500), data.modes, data.mode_std))
    return out


def real_floor(data) -> dict:
    """The same metrics for real data against disjoint real data (EMD 1,000 vs 1,000; modes on
    2,500): {metric: mean, metric_std: std, draws: n}. The model's EMD above is a mean of
    EMD_DRAWS draws, whose expectation is the same as one draw's, so the floors compare."""
    metrics = SampleMetrics(data, False, 2500, 1000, torch.device("cpu"))
    return {k.removeprefix("real_"): v for k, v in metrics.floor().items()}


def pm(floor: dict, key: str) -> str:
    return f"{floor[key]:.3f} ± {floor[f'{key}_std']:.3f}"


def step_table(exp) -> list[dict]:
    """EMD (mean ± std over sampling seeds) and seconds for 1,000 points, DDIM η = 0 and DDPM."""
    rows = []
    held = exp.data.holdout(1000)
    for sc in [*(SamplerConfig(name="ddim", steps=s) for s in STEP_TABLE), SamplerConfig(name="ddpm")]:
        emds, secs, hq = [], [], []
        for k in range(SAMPLE_SEEDS):
            t0 = time.perf_counter()
            fake = exp.sample(1000, seed=100 + k, sampler=sc)
            secs.append(time.perf_counter() - t0)
            emds.append(emd(fake, held))
            if exp.data.modes is not None:
                hq.append(mode_metrics(fake, exp.data.modes, exp.data.mode_std)["hq_percent"])
        steps = sc.steps if sc.name == "ddim" else exp.schedule.T
        rows.append({"sampler": sc.name, "steps": steps, "emd": float(np.mean(emds)), "emd_std": float(np.std(emds)),
                     "seconds": float(np.median(secs)), "hq_percent": float(np.mean(hq)) if hq else None})
    return rows


# ---- diffusers ----------------------------------------------------------------------------
def diffusers_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                         variance_type="fixed_small", clip_sample=False, prediction_type="epsilon")


def train_diffusers(cfg, steps: int, as_example: bool):
    """The same MLP, data stream and initial weights as `fewlabels train` with `cfg`, trained with
    diffusers' DDPMScheduler.add_noise. Returns (EMA model, steady-state steps/s)."""
    from diffusers.training_utils import EMAModel

    from fewlabels.diffusion.trainer import build_data

    torch.set_num_threads(DEFAULT_THREADS if as_example else 1)
    torch.manual_seed(cfg.seed)  # as fewlabels.loop does before building the model
    data = build_data(cfg)
    m, o, B = cfg.model, cfg.optim, cfg.train.batch_size
    model = MLPDenoiser(data.dim, m.width, m.depth, m.time_dim)
    if as_example:
        opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=o.betas, weight_decay=0.0)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=o.lr, betas=o.betas, fused=True)
    ema = EMAModel(model.parameters(), decay=cfg.train.ema, foreach=not as_example)
    scheduler = diffusers_scheduler()
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = None
    for step in range(1, steps + 1):
        if step == 101:
            t0 = time.perf_counter()
        for group in opt.param_groups:  # the config's linear decay, as ours applies it
            group["lr"] = o.lr * (1 - (1 - o.final_lr_fraction) * (step - 1) / max(1, steps - 1))
        x0 = data.sample(B, gen)
        t = torch.randint(scheduler.config.num_train_timesteps, (B,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        loss = F.mse_loss(model(scheduler.add_noise(x0, noise, t), t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        ema.step(model.parameters())
        if step % 100 == 0:
            loss.item()  # what a logging loop does
    rate = (steps - 100) / (time.perf_counter() - t0)
    ema.copy_to(model.parameters())
    torch.set_num_threads(1)
    return model.eval(), rate, data


@torch.inference_mode()
def sample_diffusers(model, n: int, seed: int) -> np.ndarray:
    scheduler = diffusers_scheduler()
    scheduler.set_timesteps(1000)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t.expand(n)), t, x, generator=g).prev_sample
    return x.numpy()


# ---- the GAN, for the grid25 row ---------------------------------------------------------------
def train_gan(seed: int) -> dict:
    cfg = configlib.load(CONFIGS / "gan" / "grid25_best.yaml",
                         [f"seed={seed}", "train.snapshot_every=0", "train.eval_every=0",
                          "train.checkpoint_every=1000000"])
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = train(cfg, out, device="cpu")
        wall = time.perf_counter() - t0
    return {**{k: summary["metrics"][k] for k in ("emd", *MODE_KEYS)}, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10000, help="training steps (both sides)")
    ap.add_argument("--only", nargs="*", choices=DATASETS)
    ap.add_argument("--speed-steps", type=int, default=2000, help="steps of the extra diffusers speed run")
    ap.add_argument("--no-gan", action="store_true")
    ap.add_argument("--floors-only", action="store_true", help="only the real-data floors (no training)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    datasets = args.only or DATASETS
    if args.floors_only:
        rows = []
        for name in datasets:
            cfg = configlib.load(CONFIGS / "diffusion" / f"{name}.yaml")
            floor = real_floor(make_data(cfg.data))
            rows.append({"data": name, "draws": floor["draws"],
                         **{k: pm(floor, k) for k in ("emd", *MODE_KEYS) if k in floor}})
        print("\n## Real-data floors (mean ± std over draws of disjoint real sets)\n")
        print(markdown(rows, ["data", "draws", "emd", *MODE_KEYS]))
        return
    results: dict = {"steps": args.steps, "seeds": args.seeds, "datasets": {}}
    quality, versus, speed, steps_rows = [], [], [], []
    for name in datasets:
        per_seed = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                cfg, exp, rate = train_ours(name, seed, args.steps, out)
                wall = time.perf_counter() - t0
                ours = sample_metrics(lambda n, s, e=exp: e.sample(n, seed=s), exp.data, seed)
                floor = real_floor(exp.data)
                if seed == 0:
                    table = step_table(exp)
                    for r in table:
                        steps_rows.append({"data": name, **r})
            model, theirs_rate, data = train_diffusers(cfg, args.steps, as_example=True)
            theirs = sample_metrics(lambda n, s, m=model: sample_diffusers(m, n, s), data, seed)
            _, theirs_rate_1t, _ = train_diffusers(cfg, args.speed_steps, as_example=False)
            per_seed.append({"seed": seed, "ours": ours, "theirs": theirs, "ours_steps_per_s": rate,
                             "theirs_steps_per_s": theirs_rate, "theirs_1thread_steps_per_s": theirs_rate_1t,
                             "wall": wall, "floor": floor})
            print(f"{name} seed {seed}: ours {ours['emd']:.5f} ({rate:.0f} steps/s), diffusers "
                  f"{theirs['emd']:.5f} ({theirs_rate:.0f} / {theirs_rate_1t:.0f} steps/s), floor "
                  f"{pm(floor, 'emd')}", file=sys.stderr, flush=True)
        results["datasets"][name] = per_seed
        floor = per_seed[0]["floor"]
        row = {"model": f"{name}: DDPM (ours)", "emd": float(np.mean([r["ours"]["emd"] for r in per_seed])),
               "real floor": pm(floor, "emd"), "wall": float(np.mean([r["wall"] for r in per_seed]))}
        row["emd / floor"] = row["emd"] / floor["emd"]
        for k in MODE_KEYS:
            if k in per_seed[0]["ours"]:
                row[k] = float(np.mean([r["ours"][k] for r in per_seed]))
        quality.append(row)
        if "hq_percent" in floor:
            quality.append({"model": f"{name}: real data (floor, {floor['draws']} draws)",
                            **{k: pm(floor, k) for k in ("emd", *MODE_KEYS)}})
        versus.append({"data": name, "ours EMD": mean_std([r["ours"]["emd"] for r in per_seed]),
                       "diffusers EMD": mean_std([r["theirs"]["emd"] for r in per_seed]),
                       "floor": pm(floor, "emd")})
        o = np.mean([r["ours_steps_per_s"] for r in per_seed])
        t = np.mean([r["theirs_steps_per_s"] for r in per_seed])
        t1 = np.mean([r["theirs_1thread_steps_per_s"] for r in per_seed])
        speed.append({"data": name, "ours steps/s": float(o), "diffusers (as its example) steps/s": float(t),
                      "speed-up": float(o / t), "diffusers (our torch settings) steps/s": float(t1),
                      "speed-up vs that": float(o / t1)})
    if "grid25" in datasets and not args.no_gan:
        gans = [train_gan(s) for s in range(args.seeds)]
        row = {"model": "grid25: GAN grid25_best", **{k: float(np.mean([g[k] for g in gans]))
                                                      for k in ("emd", *MODE_KEYS, "wall")}}
        results["gan_grid25_best"] = gans
        quality.append(row)

    print(f"\n## DDPM samples against the real-data floor, mean of {args.seeds} seeds, {args.steps} steps "
          f"(EMD 1,000 vs 1,000, mean of {EMD_DRAWS} draws; grid25 modes with the PacGAN protocol, "
          "2,500 samples; floors: mean ± std over draws of disjoint real sets)\n")
    print(markdown(quality, ["model", "emd", "real floor", "emd / floor", *MODE_KEYS, "wall"]))
    print("\n## Sampling steps against EMD and time (seed-0 model, 1,000 points, EMD mean ± std over "
          f"{SAMPLE_SEEDS} sampling seeds; DDIM η = 0)\n")
    for r in steps_rows:
        r["emd (mean ± std)"] = f"{r['emd']:.3f} ± {r['emd_std']:.3f}"
    print(markdown(steps_rows, ["data", "sampler", "steps", "emd (mean ± std)", "hq_percent", "seconds"]))
    print(f"\n## Same MLP, same steps and seeds: diffusers' DDPMScheduler vs ours ({args.seeds} seeds)\n")
    print(markdown(versus, ["data", "ours EMD", "diffusers EMD", "floor"]))
    print("\n## Training throughput (steady state, steps/s)\n")
    print(markdown(speed, list(speed[0])))
    results.update({"quality": quality, "step_table": steps_rows, "versus_diffusers": versus, "speed": speed})
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "diffusion2d.json").write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
