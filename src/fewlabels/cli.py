"""The `fewlabels` command (also `python -m fewlabels`)."""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path

from fewlabels import __version__, files
from fewlabels.errors import UserError


def check_seed(seed: int) -> int:
    """NumPy's legacy seeding (np.random.seed, which a run uses) takes 0 .. 2**32 - 1."""
    if not 0 <= seed < 2**32:
        raise UserError(f"--seed is {seed}; valid seeds are 0 to {2**32 - 1}")
    return seed


def _cmd_train(args) -> int:
    from fewlabels import config as configlib
    from fewlabels.train import train

    overrides = list(args.set or [])
    if args.seed is not None:
        overrides.append(f"seed={check_seed(args.seed)}")
    cfg = configlib.load(args.config, overrides)
    out = args.out or str(Path("runs") / Path(args.config).stem)
    summary = train(cfg, out, device=args.device)
    print(json.dumps(summary))
    return summary.get("exit_code", 0)


def _cmd_sample(args) -> int:
    import numpy as np

    from fewlabels.train import open_run

    if args.n < 1:
        raise UserError(f"--n is {args.n}; give a positive number of samples")
    if not args.out.endswith(".npy"):
        raise UserError(f"--out {args.out!r} must end in .npy")
    check_seed(args.seed)
    valid = "give --out a .npy path in an existing folder you can write to"
    files.check_writable(args.out, "output file", valid)  # before the slow part
    _, _, exp = open_run(args.run, args.device)
    samples = exp.sample(args.n, seed=args.seed).astype(np.float32)
    files.save_npy_atomic(args.out, samples, "output file", valid)
    result = {"out": args.out, "shape": list(samples.shape)}
    if samples.ndim == 4:  # images: a PNG grid beside the array (at most 256 of them)
        from fewlabels.viz.plots import image_grid

        grid = Path(args.out).with_suffix(".png")
        with files.user_file(grid, "sample grid", "written", valid):
            image_grid(samples[:256], grid, columns=min(16, len(samples)))
        result["grid"] = str(grid)
    print(json.dumps(result))
    return 0


def _cmd_eval(args) -> int:
    from fewlabels.train import open_run

    _, _, exp = open_run(args.run, args.device, args.set)
    if args.episodes is not None and "episodes" in inspect.signature(exp.evaluate).parameters:
        print(json.dumps(exp.evaluate(episodes=args.episodes)))  # RL runs; other families ignore it
        return 0
    print(json.dumps(exp.evaluate()))
    return 0


def _cmd_plan(args) -> int:
    from fewlabels.rl.planning.plan import plan

    result = plan(args.env, args.rows, args.cols, args.terminals, args.walls, args.slip, args.policy, args.gamma,
                  args.tol, args.in_place)
    if args.json:
        print(json.dumps(result))
    else:
        for row in result["values"]:
            print(" ".join(f"{v:8.2f}" for v in row))
        print(f"sweeps: {result['sweeps']}")
    return 0


def _cmd_demo(args) -> int:
    from fewlabels.demo import demo

    print(demo(args.out, quick=args.quick))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewlabels", description="Learning without labels: GANs, diffusion, RL.")
    p.add_argument("--version", action="version", version=f"fewlabels {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN, diffusion model or RL agent from a YAML config")
    t.add_argument("config")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.steps=2000")
    t.add_argument("--out", help="run directory (default runs/CONFIG_NAME); the same --out resumes")
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument("--seed", type=int)
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser("sample", help="draw N samples from a trained run into a .npy file")
    s.add_argument("run")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_cmd_sample)

    for name in ("eval", "evaluate"):
        e = sub.add_parser(name, help="recompute a run's metrics from its newest checkpoint")
        e.add_argument("run")
        e.add_argument("--device", default="auto")
        e.add_argument("--episodes", type=int, help="RL runs: greedy-policy episodes to average over")
        e.add_argument("--set", action="append", metavar="eval.KEY=VALUE",
                       help="evaluate under another protocol, e.g. eval.extractor=inception eval.samples=10000")
        e.set_defaults(func=_cmd_eval)

    pl = sub.add_parser("plan", help="exact planning on the grid world: values, policy and sweeps")
    pl.add_argument("--env", default="gridworld", help="gridworld, or a toy-text id such as FrozenLake-v1")
    pl.add_argument("--rows", type=int, help="grid rows (default 4)")
    pl.add_argument("--cols", type=int, help="grid columns (default 4)")
    pl.add_argument("--terminals", help='terminal cells "r,c;r,c" (default "0,0;3,3")')
    pl.add_argument("--walls", help='wall cells "r,c;r,c" (default none)')
    pl.add_argument("--slip", type=float, help="probability of slipping sideways (default 0)")
    pl.add_argument("--policy", default="optimal", choices=["random", "optimal"],
                    help="random: exact values of the equiprobable policy (a linear solve; sweeps = the iterative "
                         "evaluation's sweeps to --tol); optimal: value iteration")
    pl.add_argument("--gamma", type=float, default=1.0)
    pl.add_argument("--tol", type=float, help="stop when no value changes by this much (default 1e-10)")
    pl.add_argument("--in-place", action="store_true", help="--policy random: in-place (Gauss-Seidel) sweeps")
    pl.add_argument("--json", action="store_true", help="print {values, policy, sweeps} as JSON")
    pl.set_defaults(func=_cmd_plan)

    d = sub.add_parser("demo", help="the lecture in one command; ends in one HTML page")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--quick", action="store_true", help="tiny budgets, for tests")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        if args.debug:
            raise
        print(f"fewlabels: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader of our output went away (`fewlabels plan --json | head`): nothing more to say.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # The last line of defence: files.py words every file fewlabels reads or writes; an
        # error on a path that slipped past it still gets one sentence naming the file.
        said = files.stray(e)
        if args.debug or said is None:
            raise
        print(f"fewlabels: error: {said}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fewlabels: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
