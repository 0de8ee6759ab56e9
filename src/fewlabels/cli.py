"""The `fewlabels` command (also `python -m fewlabels`)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from fewlabels import __version__, files
from fewlabels.errors import Interrupted, UserError


def check_seed(seed: int) -> int:
    """NumPy's legacy seeding (np.random.seed, which a run uses) takes 0 .. 2**32 - 1."""
    if not 0 <= seed < 2**32:
        raise UserError(f"--seed is {seed}; valid seeds are 0 to {2**32 - 1}")
    return seed


def _cmd_train(args) -> int:
    from fewlabels import api

    sets = list(args.set or [])
    if args.seed is not None:
        sets.append(f"seed={check_seed(args.seed)}")
    try:
        run = api.train(args.config, args.out, device=args.device, sets=sets)
    except Interrupted as e:  # saved; the loop said how to resume
        print(json.dumps(e.summary))
        return int(e.summary.get("exit_code", 130))
    from fewlabels.distributed import is_main

    if not is_main():  # under torchrun rank 0 speaks for the run
        return 0
    print(json.dumps(run.last))
    if run.report.is_file():
        print(f"fewlabels: report: {run.report}", file=sys.stderr)
    return 0


def _cmd_sample(args) -> int:
    from fewlabels import api

    if args.n < 1:
        raise UserError(f"--n is {args.n}; give a positive number of samples")
    if not args.out.endswith(".npy"):
        raise UserError(f"--out {args.out!r} must end in .npy")
    check_seed(args.seed)
    valid = "give --out a .npy path in an existing folder you can write to"
    files.check_writable(args.out, "output file", valid)  # before the slow part
    samples, labels = api.load(args.run, args.device, sets=args.set or []).sample_labelled(
        args.n, seed=args.seed, label=args.label, truncation=args.truncation)
    files.save_npy_atomic(args.out, samples, "output file", valid)
    result = {"out": args.out, "shape": list(samples.shape)}
    if labels is not None and args.label is None:  # balanced classes: which sample is which
        result["labels"] = str(Path(args.out).with_suffix(".labels.npy"))
        files.save_npy_atomic(result["labels"], labels, "labels file", valid)
    if samples.ndim == 4:  # images: a PNG grid beside the array (at most 256 of them; one class a column)
        from fewlabels.viz.plots import image_grid

        grid = Path(args.out).with_suffix(".png")
        columns = int(labels.max()) + 1 if labels is not None and args.label is None else 16
        with files.user_file(grid, "sample grid", "written", valid):
            image_grid(samples[:256 // columns * columns], grid, columns=min(columns, len(samples)))
        result["grid"] = str(grid)
    print(json.dumps(result))
    return 0


def _cmd_predict(args) -> int:
    from fewlabels import api

    if not args.out.endswith(".npy"):
        raise UserError(f"--out {args.out!r} must end in .npy")
    valid = "give --out a .npy path in an existing folder you can write to"
    files.check_writable(args.out, "output file", valid)
    images = _load_images(args.input)
    labels = api.load(args.run, args.device).predict(images)
    files.save_npy_atomic(args.out, labels, "output file", valid)
    print(json.dumps({"out": args.out, "n": int(len(labels))}))
    return 0


def _load_images(path: str):
    import numpy as np

    valid = "a .npy of images (N, C, H, W) in [-1, 1], as `fewlabels sample` writes"
    with files.user_file(path, "input images", "read", valid):
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise UserError(f"input images {path!r} is not a readable .npy file ({e}); give {valid}") from None


def _cmd_eval(args) -> int:
    from fewlabels import api

    run = api.load(args.run, args.device, sets=args.set or [])
    print(json.dumps(run.evaluate(episodes=args.episodes, truncation=args.truncation)))
    return 0


def _cmd_truncation(args) -> int:
    from fewlabels import api
    from fewlabels.viz.plots import truncation_curve

    values = args.values or list(api.TRUNCATIONS)
    for t in values:
        if not t > 0:
            raise UserError(f"--values has {t}; truncations must be positive, e.g. 0.25 0.5 1 2")
    out = Path(args.out)
    if out.suffix != ".png":
        raise UserError(f"--out {args.out!r} must end in .png")
    valid = "give --out a .png path in an existing folder you can write to"
    files.check_writable(out, "figure", valid)
    rows = api.load(args.run, args.device, sets=args.set or []).truncation_curve(values)
    with files.user_file(out, "figure", "written", valid):
        truncation_curve(rows, out)
    table = out.with_suffix(".json")
    files.write_text_atomic(table, json.dumps(rows, indent=1), "truncation table", valid)
    print(json.dumps({"figure": str(out), "table": str(table), "rows": rows}))
    return 0


def _cmd_gtp(args) -> int:
    from fewlabels.rl.go.gtp import GTPEngine
    from fewlabels.rl.go.load import load_player

    if args.komi is not None and not math.isfinite(args.komi):
        raise UserError(f"--komi is {args.komi}; give a finite number, e.g. 7.5")
    player = load_player(args.run, simulations=args.playouts, device=args.device, score_utility=args.score_utility,
                         gumbel_actions=args.gumbel)
    size = player.sizes[0]
    komi = player.komi if args.komi is None else args.komi
    GTPEngine(player, size, komi).serve(sys.stdin, sys.stdout)
    return 0


def _cmd_match(args) -> int:
    from fewlabels.rl.go.load import load_player
    from fewlabels.rl.go.match import make_player, run_match, spawner

    if args.games < 1:
        raise UserError(f"--games is {args.games}; give a positive number of games")
    if args.parallel < 1:
        raise UserError(f"--parallel is {args.parallel}; give a positive number of games to play at once")
    if args.max_moves is not None and args.max_moves < 1:
        raise UserError(f"--max-moves is {args.max_moves}; give a positive number of moves (default: 4 N²)")
    if args.komi is not None and not math.isfinite(args.komi):
        raise UserError(f"--komi is {args.komi}; give a finite number, e.g. 7.5")
    agent = load_player(args.run, simulations=args.playouts, device=args.device, sample_moves=args.sample_moves,
                        seed=args.seed, score_utility=args.score_utility, gumbel_actions=args.gumbel)
    size = agent.sizes[0] if args.size is None else args.size
    if size != agent.sizes[0]:
        raise UserError(f"run {args.run!r} was trained on {agent.sizes[0]}x{agent.sizes[0]} boards; --size {size} "
                        f"is not a board it plays (give --size {agent.sizes[0]}, or a run trained on {size}x{size})")
    komi = agent.komi if args.komi is None else args.komi
    out = Path(args.out) if args.out else None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(f"--out {args.out!r} cannot be made a folder ({e.strerror}); give a folder you can "
                            "write to") from None
        files.check_writable(out / "match.json", "match folder", "give --out a folder you can write to")
    opponent, name = make_player(args.opponent, seed=args.seed, device=args.device)
    try:
        result = run_match(agent, opponent, args.games, size, komi, (Path(args.run).name, name), out=out,
                           max_moves=args.max_moves, progress=sys.stderr.isatty(), parallel=args.parallel,
                           spawn=spawner(opponent, args.opponent, args.device))
    finally:
        opponent.close()
    print(json.dumps(result))
    return 0


def _cmd_configs(args) -> int:
    from fewlabels.config import shipped_configs

    listed = shipped_configs()
    if args.json:
        print(json.dumps(listed))
        return 0
    width = max(map(len, listed))
    for name, description in listed.items():
        short = description if len(description) <= 100 else description[:97] + "..."
        print(f"{name:<{width}}  {short}")
    return 0


def _cmd_plan(args) -> int:
    from fewlabels.rl.planning.plan import plan, plan_text

    result, marks = plan(args.env, args.rows, args.cols, args.terminals, args.walls, args.slip, args.policy,
                         args.gamma, args.tol, args.in_place)
    print(json.dumps(result) if args.json else plan_text(result, marks, args.policy))
    return 0


def _cmd_demo(args) -> int:
    from fewlabels.demo import demo

    print(demo(args.out, quick=args.quick))
    return 0


DOCS = "README.md and docs/ of the fewlabels repository"


def _sub(sub, name: str, help: str, examples: str, **kw) -> argparse.ArgumentParser:
    """A subcommand whose help ends with examples and a pointer to the docs."""
    return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".",
                          epilog=f"examples:\n{examples}\n\ndocs: {DOCS}",
                          formatter_class=argparse.RawDescriptionHelpFormatter, **kw)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fewlabels", description="Learning without labels: GANs, diffusion, RL.",
                                epilog="`fewlabels COMMAND -h` shows a command's options and examples; "
                                       f"docs: {DOCS}")
    p.add_argument("-V", "--version", action="version", version=f"fewlabels {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    device = {"default": "auto", "help": "auto (a CUDA GPU if there is one), cpu or cuda (default: auto)"}
    score_utility = {"type": float, "metavar": "W", "help": (
        "the search also prefers lines that keep more points, by W · (2/π) atan(Δscore / 0.75 N) (after KataGo; "
        "needs a run with an ownership head; no effect with --playouts 0; default: the run's "
        "alphazero.score_utility)")}
    gumbel = {"type": int, "default": 0, "metavar": "M", "help": (
        "M > 0: Gumbel AlphaZero's search, Sequential Halving over the M moves the network ranks first, "
        "also for runs trained with it (default: 0, PUCT)")}

    t = _sub(sub, "train", "train a GAN, diffusion model or RL agent from a YAML config", (
        "  fewlabels train gan/grid25_best                      # a shipped config, into runs/grid25_best\n"
        "  fewlabels train my.yaml --out runs/mine --set train.steps=2000\n"
        "  fewlabels train gan/grid25_best --out runs/g --seed 3   # the same command again resumes"))
    t.add_argument("config", help="a YAML file, or a shipped config by name (`fewlabels configs` lists them)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. train.steps=2000 (repeatable; default: none)")
    t.add_argument("--out", help="run directory (default: runs/ and the config's file name, e.g. "
                                 "runs/grid25_best); the same --out resumes")
    t.add_argument("--device", **device)
    t.add_argument("--seed", type=int, help="the run's seed (default: the config's `seed`, 0 unless it says)")
    t.set_defaults(func=_cmd_train)

    s = _sub(sub, "sample", "draw N samples from a trained run into a .npy file", (
        "  fewlabels sample runs/grid25_best --n 1000 --out points.npy\n"
        "  fewlabels sample runs/digits --n 64 --out digits.npy          # and digits.png, a grid\n"
        "  fewlabels sample runs/digits_biggan --n 100 --out sevens.npy --class 7 --truncation 0.5\n"
        "  fewlabels sample runs/dgrid25 --n 1000 --out ddim.npy --set sampler.name=ddim --set sampler.steps=50"))
    s.add_argument("run", help="a run directory written by `fewlabels train`")
    s.add_argument("--n", type=int, required=True, help="how many samples (required)")
    s.add_argument("--out", required=True, help="the .npy file to write (required); images also get a .png grid")
    s.add_argument("--seed", type=int, default=0, help="the sampling seed (default: 0)")
    s.add_argument("--class", dest="label", type=int, metavar="K",
                   help="conditional GANs: class K for every sample (default: classes balanced, their labels "
                        "written beside the samples as OUT.labels.npy)")
    s.add_argument("--truncation", type=float, metavar="T",
                   help="GANs: z from the normal truncated to |z_i| <= T, by resampling (BigGAN's truncation "
                        "trick; smaller T: more typical, less varied; default: no truncation)")
    s.add_argument("--device", **device)
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="sample another way than the run was trained to, e.g. --set sampler.name=ddim --set "
                        "sampler.steps=50 (diffusion; default: the run's own settings)")
    s.set_defaults(func=_cmd_sample)

    pr = _sub(sub, "predict", "label images with a trained classifier run (family ssl)", (
        "  fewlabels predict runs/digits_ssl_gan --input images.npy --out labels.npy"))
    pr.add_argument("run", help="a run directory written by `fewlabels train ssl/...`")
    pr.add_argument("--input", required=True, help="a .npy of images (N, C, H, W) in [-1, 1], the layout `sample` "
                                                   "writes (required)")
    pr.add_argument("--out", required=True, help="the .npy file of int64 labels to write (required)")
    pr.add_argument("--device", **device)
    pr.set_defaults(func=_cmd_predict)

    e = _sub(sub, "eval", "recompute a run's metrics from its newest checkpoint", (
        "  fewlabels eval runs/grid25_best                       # the family's sample metrics\n"
        "  fewlabels eval runs/digits --set eval.extractor=inception --set eval.samples=10000\n"
        "  fewlabels evaluate runs/cartpole_ppo --episodes 100    # {mean_return, std_return, episodes}"),
        aliases=["evaluate"])
    e.add_argument("run", help="a run directory written by `fewlabels train`")
    e.add_argument("--device", **device)
    e.add_argument("--episodes", type=int, help="RL runs: greedy episodes to average over (default: eval.episodes)")
    e.add_argument("--truncation", type=float, metavar="T",
                   help="GANs: score samples whose z is truncated to |z_i| <= T (default: no truncation)")
    e.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="evaluate under another protocol, e.g. eval.samples=10000 (eval.* keys, and diffusion's "
                        "sampler.*; default: the run's own)")
    e.set_defaults(func=_cmd_eval)

    tr = _sub(sub, "truncation", "a GAN's FID, precision, recall and class consistency against the truncation T", (
        "  fewlabels truncation runs/digits_biggan                   # T = 0.25 ... 2.0, truncation.png\n"
        "  fewlabels truncation runs/fashion_biggan --values 0.5 1 2 --out fashion_t.png "
        "--set eval.extractor=inception"))
    tr.add_argument("run", help="a GAN run directory written by `fewlabels train`")
    tr.add_argument("--values", type=float, nargs="+", metavar="T",
                    help="the thresholds (default: 0.25 0.5 0.75 1.0 1.5 2.0)")
    tr.add_argument("--out", default="truncation.png",
                    help="the figure (default: truncation.png); the rows also go to the same name .json")
    tr.add_argument("--device", **device)
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="evaluate under another protocol, e.g. eval.extractor=inception (default: the run's own)")
    tr.set_defaults(func=_cmd_truncation)

    pl = _sub(sub, "plan", "exact planning on the grid world or a toy-text environment: values, policy, sweeps", (
        "  fewlabels plan                                       # the lecture's 4x4 grid, optimal policy\n"
        "  fewlabels plan --policy random --json                # Figure 4.1's values: 0, -14, -20, -22\n"
        "  fewlabels plan --rows 6 --cols 9 --terminals \"0,8\" --walls \"1,2;2,2;3,2\"\n"
        "  fewlabels plan --env FrozenLake-v1"))
    pl.add_argument("--env", default="gridworld",
                    help="gridworld, or a toy-text id such as FrozenLake-v1 (default: gridworld)")
    pl.add_argument("--rows", type=int, help="grid rows (default: 4)")
    pl.add_argument("--cols", type=int, help="grid columns (default: 4)")
    pl.add_argument("--terminals", help='terminal cells "r,c;r,c" (default: two opposite corners, "0,0;ROWS-1,COLS-1")')
    pl.add_argument("--walls", help='wall cells "r,c;r,c" (default: none)')
    pl.add_argument("--slip", type=float, help="probability of slipping sideways, half of it to each side "
                                                 "(default: 0)")
    pl.add_argument("--policy", default="optimal", choices=["random", "optimal"],
                    help="random: exact values of the equiprobable policy (a linear solve; sweeps = the iterative "
                         "evaluation's sweeps to --tol); optimal: value iteration (default: optimal)")
    pl.add_argument("--gamma", type=float, default=1.0, help="discount γ (default: 1)")
    pl.add_argument("--tol", type=float, help="stop when no value changes by this much (default: 1e-10)")
    pl.add_argument("--in-place", action="store_true", help="--policy random: in-place (Gauss-Seidel) sweeps")
    pl.add_argument("--json", action="store_true", help='print {"values", "policy", "sweeps"} as JSON')
    pl.set_defaults(func=_cmd_plan)

    g = _sub(sub, "gtp", "a trained Go run as a GTP v2 engine on stdin/stdout, for a GUI or another engine", (
        "  fewlabels gtp runs/go5_alphazero                   # then type: genmove b, showboard, quit\n"
        "  gogui -program \"fewlabels gtp runs/go7_alphazero --playouts 200\"\n"
        "  gnugo --mode gtp ... as the opponent: see `fewlabels match`"))
    g.add_argument("run", help="a Go run directory written by `fewlabels train go/...`")
    g.add_argument("--playouts", type=int, metavar="N",
                   help="search simulations per move; 0: the network alone (default: the run's eval.simulations)")
    g.add_argument("--komi", type=float, help="komi until the controller sends one (default: the run's)")
    g.add_argument("--score-utility", **score_utility)
    g.add_argument("--gumbel", **gumbel)
    g.add_argument("--device", **device)
    g.set_defaults(func=_cmd_gtp)

    m = _sub(sub, "match", "a Go run against an opponent: N games, colours alternating, SGF files and a JSON result", (
        "  fewlabels match runs/go5_alphazero --opponent random --games 200\n"
        "  fewlabels match runs/go7_alphazero --opponent \"gnugo --mode gtp --level 1 --chinese-rules "
        "--capture-all-dead\" --games 100 --out games/\n"
        "  fewlabels match runs/go7_alphazero --opponent gnugo:10 --games 100    # the same, GNU Go found for you\n"
        "  fewlabels match runs/go7_alphazero --opponent runs/go7_ppo --games 50 --playouts 0"))
    m.add_argument("run", help="a Go run directory written by `fewlabels train go/...`")
    m.add_argument("--opponent", required=True,
                   help="random; gnugo:LEVEL; mcts:SIMULATIONS (OpenSpiel's MCTSBot, random rollouts); another "
                        "run directory; or any GTP engine's command line (required)")
    m.add_argument("--games", type=int, default=100,
                   help="games; the run is Black in the odd-numbered ones (default: 100)")
    m.add_argument("--size", type=int, help="board size (default: the run's; another size is refused)")
    m.add_argument("--komi", type=float, help="komi (default: the run's)")
    m.add_argument("--playouts", type=int, metavar="N",
                   help="the run's search simulations per move; 0: the network alone (default: its eval.simulations)")
    m.add_argument("--score-utility", **score_utility)
    m.add_argument("--gumbel", **gumbel)
    m.add_argument("--out", help="folder for one SGF per game and match.json (default: none written)")
    m.add_argument("--max-moves", type=int,
                   help="adjudicate (score as it stands) after this many moves (default: 4 N²)")
    m.add_argument("--sample-moves", type=int, default=0, metavar="K",
                   help="while fewer than K moves of a game are played, the run draws its move in proportion to "
                        "its search's visit counts instead of taking the best, so that games against a "
                        "deterministic opponent differ (match.json counts distinct_games; default: 0)")
    m.add_argument("--seed", type=int, default=0,
                   help="the random and MCTS opponents' seed, and the streams of --sample-moves (default: 0)")
    m.add_argument("--parallel", type=int, default=16, metavar="P",
                   help="games played at once, each with its own opponent (a GTP engine: a process each); the "
                        "run's moves in all of them come from one batched search, several times faster on a "
                        "CPU (default: 16)")
    m.add_argument("--device", **device)
    m.set_defaults(func=_cmd_match)

    d = _sub(sub, "demo", "the lecture in one command; ends in one HTML page", (
        "  fewlabels demo                    # about 6 minutes on 2 CPU cores; open runs/demo/index.html\n"
        "  fewlabels demo --out /tmp/demo"))
    d.add_argument("--out", default="runs/demo", help="folder of the demo's runs and page (default: runs/demo)")
    d.add_argument("--quick", action="store_true", help="tiny budgets, for tests")
    d.set_defaults(func=_cmd_demo)

    c = _sub(sub, "configs", "list the shipped configs with their one-line descriptions", (
        "  fewlabels configs\n"
        "  fewlabels train rl/cartpole_ppo   # then train one by its name, from any directory"))
    c.add_argument("--json", action="store_true", help="print {name: description} as JSON")
    c.set_defaults(func=_cmd_configs)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        if args.debug:
            raise
        from fewlabels.distributed import is_main

        if is_main() or not e.on_every_rank:  # one sentence, not one per process
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
    except Interrupted as e:  # a stage of a longer command (the demo) was stopped: the command stops too
        print(f"fewlabels: stopped; {e.summary['steps']} steps of the running stage are saved", file=sys.stderr)
        return int(e.summary.get("exit_code", 130))
    except KeyboardInterrupt:
        print("fewlabels: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
