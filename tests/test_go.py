"""Go (issue 14): the rules wrapper against OpenSpiel, the Gymnasium environment, PUCT search,
AlphaZero's parts, the GTP engine and client, the match runner (SGF, Wilson interval, opponents
that fail), GNU Go playing complete games against `fewlabels gtp`, and resume after SIGTERM."""

import json
import re
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from conftest import train_killed_at_step
from fewlabels import checkpoint
from fewlabels.cli import main
from fewlabels.errors import UserError
from fewlabels.rl.go import GO_ID
from fewlabels.rl.go.alphazero import AlphaZeroExperiment, symmetry
from fewlabels.rl.go.env import planes
from fewlabels.rl.go.evaluation import against_random
from fewlabels.rl.go.gtp import GTPEngine, GTPProcess
from fewlabels.rl.go.match import gnugo_path, play_game, run_match, wilson
from fewlabels.rl.go.mcts import Job, Node, Search, considered_visits, network_evaluator
from fewlabels.rl.go.net import PolicyValueNet, masked_log_softmax
from fewlabels.rl.go.players import PolicyPlayer, random_player
from fewlabels.rl.go.ppo import SelfPlayPPO
from fewlabels.rl.go.rules import BLACK, WHITE, Rules, action_to_vertex, ownership, tromp_taylor, vertex_to_action
from fewlabels.run import RunDir

needs_gnugo = pytest.mark.skipif(gnugo_path() is None, reason="GNU Go is not installed (Debian: apt-get install gnugo)")


def play(rules, *vertices):
    pos = rules.new()
    for v in vertices:
        pos.play(vertex_to_action(v, rules.size))
    return pos


def random_game(rules, rng):
    pos = rules.new()
    while not pos.over:
        pos.play(int(rng.choice(np.flatnonzero(pos.legal_mask()))))
    return pos


# ---- rules ---------------------------------------------------------------------------------------
def test_vertices_follow_gtp_columns_without_i_and_round_trip():
    assert vertex_to_action("A1", 9) == 0 and vertex_to_action("j1", 9) == 8 and vertex_to_action("pass", 9) == 81
    assert action_to_vertex(8, 9) == "J1" and action_to_vertex(9 * 8 + 4, 9) == "E9"
    assert all(vertex_to_action(action_to_vertex(a, 7), 7) == a for a in range(50))
    for bad in ("I1", "A0", "F1", "A6", "", "Z"):
        with pytest.raises(ValueError, match="not on a 5x5 board"):
            vertex_to_action(bad, 5)


def test_a_capture_removes_the_stones_as_openspiel_does():
    pos = play(Rules(5, 0.5), "B1", "A1", "B2", "pass")  # white A1 has liberty A2 only
    assert pos.board()[0, 0] == WHITE
    pos.play(vertex_to_action("A2", 5))
    assert pos.board()[0, 0] == 0 and pos.board()[1, 0] == BLACK


def test_suicide_is_illegal():
    pos = play(Rules(5, 0.5), "B1", "pass", "A2")  # A1 is an eye of black
    a1 = vertex_to_action("A1", 5)
    assert pos.to_play == WHITE and not pos.legal_mask()[a1]
    with pytest.raises(ValueError, match="illegal"):
        pos.play(a1)


def test_ko_recapture_is_illegal_at_once_and_legal_after_a_move_elsewhere():
    rules = Rules(5, 0.5)
    pos = play(rules, "B1", "C1", "A2", "D2", "B3", "C3", "C2", "B2")  # white B2 captures C2
    c2 = vertex_to_action("C2", 5)
    assert pos.board()[1, 2] == 0 and not pos.legal_mask()[c2]
    pos.play(vertex_to_action("E5", 5))
    pos.play(vertex_to_action("E4", 5))
    assert pos.legal_mask()[c2]


def test_one_pass_continues_and_two_passes_end_the_game():
    pos = play(Rules(5, 0.5), "C3", "pass")
    assert not pos.over
    pos.play(25)
    assert pos.over and pos.passes_ended() and not pos.repetition_ended()


def test_tromp_taylor_counts_stones_and_the_regions_only_one_colour_reaches():
    b = np.zeros((5, 5), np.int8)
    b[:, 2] = BLACK
    b[0, 4] = WHITE
    assert tromp_taylor(b) == (15, 1)  # left region is black's; the right one touches both
    assert tromp_taylor(np.zeros((5, 5), np.int8)) == (0, 0)
    owner = ownership(b)
    assert (owner[:, :3] == BLACK).all() and owner[0, 4] == WHITE
    assert (owner[:, 3] == 0).all() and (owner[1:, 4] == 0).all()  # the right region is nobody's


@pytest.mark.parametrize("size", [5, 7])
def test_winner_and_score_agree_with_openspiel_on_random_games(size):
    rules, rng = Rules(size, 0.5 if size == 5 else 8.5), np.random.default_rng(size)
    for _ in range(150):
        pos = random_game(rules, rng)
        black_return = pos.state.returns()[0]
        assert pos.winner() == (0 if black_return == 0 else BLACK if black_return > 0 else WHITE)
        if not pos.repetition_ended():
            assert np.sign(pos.score()) == np.sign(black_return)


def test_setup_reproduces_positions_of_random_games_with_either_side_to_move():
    rules, rng = Rules(5, 0.5), np.random.default_rng(3)
    for _ in range(40):
        pos = rules.new()
        for _ in range(int(rng.integers(1, 30))):
            stones = np.flatnonzero(pos.legal_mask()[:-1])
            if pos.over or not len(stones):
                break
            pos.play(int(rng.choice(stones)))
        for colour in (BLACK, WHITE):
            made = rules.setup(pos.board(), colour)
            assert np.array_equal(made.board(), pos.board()) and made.to_play == colour and not made.over
            if (pos.board() == -colour).any():  # the set-up ends on a stone: a pass now does not end the game
                assert made.history[-1] != rules.pass_action and not made.after(rules.pass_action).over


def test_a_whole_board_repetition_is_played_on_with_the_ko_it_makes_still_known():
    # a random 3x3 game whose 14th move (white B1, capturing C1) repeats an earlier position
    moves = [(1, 6), (-1, 7), (1, 0), (-1, 1), (1, 4), (-1, 5), (1, 8), (-1, 3), (1, 2), (-1, 7), (1, 0),
             (-1, 5), (1, 6), (-1, 1)]
    openspiel = Rules(3, 0.5).new()
    for _, action in moves:
        openspiel.play(action)
    assert openspiel.over and openspiel.repetition_ended()  # OpenSpiel: a draw, the game is over
    player = PolicyPlayer(None, "referee")
    player.new_game(3, 0.5)
    for colour, action in moves:
        player.play(colour, action)
    assert player.repetitions == 1 and not player.position.over  # here, as under GNU Go's rules: play on
    assert np.array_equal(player.position.board(), openspiel.board())
    assert not player.position.legal_mask()[vertex_to_action("C1", 3)]  # black may not retake the ko at once


# ---- the environment -------------------------------------------------------------------------------
def test_env_is_registered_keeps_to_its_spaces_and_is_deterministic_under_a_seed():
    # (gymnasium's check_env steps random actions, which are often illegal in Go: checked by hand)
    def episode(seed):
        env = gym.make(GO_ID, size=5, opponent="random")
        obs, info = env.reset(seed=seed)
        assert obs.shape == (7, 5, 5) and info["action_mask"].shape == (26,) and info["action_mask"].all()
        rng, trace, done = np.random.default_rng(seed), [], False
        while not done:
            obs, reward, done, truncated, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            assert env.observation_space.contains(obs) and not truncated
            trace.append(obs.tobytes())
        return trace, reward

    assert episode(4) == episode(4)
    assert episode(4) != episode(5)


def test_planes_are_seen_from_the_side_to_move_with_history():
    pos = play(Rules(5, 0.5), "C3", "B2")
    x = planes(pos, history=2)
    assert x[0, 2, 2] == 1 and x[1, 1, 1] == 1  # black to move: own stones first
    assert x[2, 2, 2] == 1 and x[3].sum() == 0  # one move earlier: only C3, now seen as black's own
    assert x[-1].all()  # black to move


def test_the_komi_plane_is_the_komi_of_the_side_to_move():
    black, white = Rules(5, 6.5).new(), play(Rules(5, 6.5), "C3")
    for pos, komi in ((black, -6.5), (white, 6.5)):
        x = planes(pos, history=2, komi=True)
        assert x.shape == (6, 5, 5) and np.array_equal(x[:5], planes(pos, history=2))
        assert np.all(x[5] == np.float32(komi / 25))


def test_two_sided_env_rewards_the_mover_and_agrees_with_openspiel():
    env = gym.make(GO_ID, size=5, komi=0.5, reward="pm1")
    rng = np.random.default_rng(0)
    for ep in range(20):
        _, info = env.reset(seed=ep)
        done = False
        while not done:
            mover = info["to_play"]
            _, reward, done, _, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
        black_return = env.unwrapped.position.state.returns()[0]
        assert reward == black_return * mover


def test_env_against_random_alternates_colours_and_refuses_illegal_moves():
    env = gym.make(GO_ID, size=5, opponent="random", agent_colour="alternate")
    env.reset(seed=0)
    assert env.unwrapped.position.to_play == BLACK and env.unwrapped.me == BLACK
    _, info = env.reset()
    assert env.unwrapped.me == WHITE and env.unwrapped.position.board().sum() in (0, 1)  # random may pass
    occupied = np.flatnonzero(~info["action_mask"])
    if len(occupied):
        with pytest.raises(ValueError, match="illegal"):
            env.step(int(occupied[0]))
    with pytest.raises(ValueError, match="reward"):
        gym.make(GO_ID, reward="score")


# ---- search and AlphaZero's parts ---------------------------------------------------------------------
def random_position(size, rng):
    """A position of a random game 0-30 moves in, set up afresh with Black to move (not over)."""
    played = random_game(Rules(size, 0.5, int(rng.integers(1, 31))), rng)
    return Rules(size, 0.5).setup(played.board(), BLACK)


def uniform(positions):
    priors = np.stack([p.legal_mask() / p.legal_mask().sum() for p in positions]).astype(np.float64)
    return priors, np.zeros(len(positions))


def test_backup_negates_the_value_at_every_level():
    rules = Rules(5, 0.5)
    root = Node(rules.new(), BLACK)
    root.expand(np.full(26, 1 / 26))
    child = root.child(3, 3)
    child.expand(np.full(26, 1 / 26))
    Search._backup([(root, 3), (child, 7)], value=1.0)  # good for the side to move at the leaf (black)
    assert child.value_sum[7] == -1.0 and root.value_sum[3] == 1.0


def test_search_finds_the_winning_pass_from_terminal_values_alone():
    # Black has passed on the empty board: White's pass ends the game, won by komi; any other
    # move lets it go on (and the uniform evaluator says nothing: only the rules decide).
    rules = Rules(5, 10.5)
    pos = play(rules, "pass")
    roots = Search(uniform, simulations=200).run([pos])
    assert int(np.argmax(roots[0].visits)) == 25


def test_batched_and_one_by_one_search_give_the_same_visits():
    rules, rng = Rules(5, 0.5), np.random.default_rng(0)
    positions = [random_game(Rules(5, 0.5, 8), rng) for _ in range(3)]
    positions = [rules.setup(p.board(), BLACK) for p in positions]

    def evaluate(ps):  # deterministic, position-dependent
        priors, _ = uniform(ps)
        return priors, np.array([np.tanh(p.board().sum() / 5) for p in ps])

    a = Search(evaluate, 24, batched=True).run(positions)
    b = Search(evaluate, 24, batched=False).run(positions)
    assert all(np.array_equal(x.visits, y.visits) for x, y in zip(a, b))


def test_each_root_gets_its_own_simulations_and_noise():
    """Playout-cap randomisation searches full and fast moves in one batch: every root is visited
    exactly its own budget, and only the roots given noise move off the network's prior."""
    rules, rng = Rules(5, 0.5), np.random.default_rng(0)
    positions = [rules.setup(random_game(Rules(5, 0.5, 6), rng).board(), BLACK) for _ in range(3)]
    roots = [None] * 3

    def settle(g, root):
        roots[g] = root

    Search(uniform).search_games([Job(p, b, z) for p, b, z in zip(positions, [16, 3, 9], [True, False, False])],
                                 settle, rng)
    assert [int(r.visits.sum()) for r in roots] == [16, 3, 9]
    expected = [uniform([p])[0][0] for p in positions]
    assert [not np.allclose(r.prior, e) for r, e in zip(roots, expected)] == [True, False, False]


def test_searches_of_different_budgets_in_one_batch_are_each_the_search_run_alone():
    """search_games with score utility: every game's search (its own budget, its own root's
    centre) visits and values exactly as the same search with nothing beside it."""
    rules, rng = Rules(5, 0.5), np.random.default_rng(1)

    def evaluate(ps):  # deterministic, position-dependent values and margins
        priors, _ = uniform(ps)
        boards = np.array([p.board().sum() * p.to_play for p in ps], float)
        return priors, np.tanh(boards / 7), boards + np.array([len(p.history) for p in ps])

    games = [random_game(Rules(5, 0.5, n), rng) for n in (4, 7, 9, 12)]
    games = [rules.setup(g.board(), BLACK if i % 2 else WHITE) for i, g in enumerate(games)]
    budgets, searched = [5, 17, 2, 11], []
    search = Search(evaluate, score_utility=0.3)
    search.search_games([Job(g, b) for g, b in zip(games, budgets)], lambda g, root: searched.append((g, root)))
    assert sorted(g for g, _ in searched) == [0, 1, 2, 3]
    for g, root in searched:
        alone = Search(evaluate, budgets[g], score_utility=0.3).run([games[g]])[0]
        assert np.array_equal(root.visits, alone.visits) and np.array_equal(root.value_sum, alone.value_sum), g


def test_score_utility_finds_the_move_that_keeps_most_points_where_the_value_tells_no_move_apart():
    """Every position is worth 0 to the value head, so the search alone follows the uniform prior.
    The margins say that Black's first move a keeps a points (pass: none): with λ > 0 the most
    visited move is the one that keeps most (24, the last point), without it is not."""
    rules = Rules(5, 0.5)

    def evaluate(ps):
        priors, values = uniform(ps)
        kept = [(p.history[0] if p.history[0] < 25 else -10) if p.history else 0 for p in ps]
        return priors, values, np.array([k * p.to_play for k, p in zip(kept, ps)], float)  # Black's gain

    with_score = Search(evaluate, 200, score_utility=0.3).run([rules.new()])[0]
    without = Search(evaluate, 200).run([rules.new()])[0]
    assert int(np.argmax(with_score.visits)) == 24  # and the more a move keeps, the more it is searched:
    assert np.corrcoef(np.arange(25), with_score.visits[:25])[0, 1] > 0.9
    assert without.visits[24] <= np.median(without.visits) and with_score.visits[25] < without.visits[25]
    two = [rules.new(), play(rules, "C3")]  # (two roots: one leaf at a time is another code path)
    batched, one_by_one = (Search(evaluate, 100, score_utility=0.3, batched=b).run(two) for b in (True, False))
    assert all(np.array_equal(x.visits, y.visits) for x, y in zip(batched, one_by_one))


def test_score_utility_is_centred_on_the_roots_margin_and_scores_finished_games_by_the_rules():
    rules, search = Rules(5, 0.5), Search(uniform, 1, score_utility=0.3)
    root = Node(rules.new(), BLACK)
    white_leaf = Node(play(rules, "C3"), WHITE)
    # the root expects Black +5: a White leaf at White -5 is as expected (no term), at -1 better for White
    assert search._utility(0.2, -5.0, white_leaf, root, 5.0) == pytest.approx(0.2)
    better = 0.2 + 0.3 * 2 / np.pi * np.arctan(4 / 3.75)  # 0.75 N = 3.75
    assert search._utility(0.2, -1.0, white_leaf, root, 5.0) == pytest.approx(better)
    # Black passed on the empty board: White's pass ends the game, won by komi 0.5 (Tromp-Taylor: W+0.5);
    # play on instead and a uniform evaluator says nothing. Centred on 0 (no margins from the evaluator
    # at the root): u = 1 + 0.3 (2/π) atan(0.5 / 3.75) for White's pass
    ends = Search(lambda ps: (*uniform(ps), np.zeros(len(ps))), 200, score_utility=0.3).run([play(rules, "pass")])[0]
    q = ends.value_sum[25] / ends.visits[25]
    assert int(np.argmax(ends.visits)) == 25 and q == pytest.approx(1 + 0.3 * 2 / np.pi * np.arctan(0.5 / 3.75))


def test_sequential_halving_halves_the_considered_actions_and_spends_the_budget_on_the_survivors():
    """Gumbel AlphaZero's root: 16 actions considered, 32 simulations: one visit each, then one
    more for the best 8, then two more each for the best 4 (mctx's schedule)."""
    assert considered_visits(16, 32) == (0,) * 16 + (1,) * 8 + (2,) * 4 + (3,) * 4
    assert considered_visits(4, 10) == (0, 0, 0, 0, 1, 1, 2, 2, 3, 3)
    assert considered_visits(1, 3) == (0, 1, 2)
    root = Search(uniform, 32, gumbel_actions=16).run([Rules(5, 0.5).new()])[0]
    assert sorted(root.visits, reverse=True)[:17] == [4] * 4 + [2] * 4 + [1] * 8 + [0]


def test_gumbel_search_finds_a_move_the_prior_almost_rules_out_and_puts_its_policy_there():
    """One Black move wins (the position after it is worth -0.9 to White), but the prior gives it
    0.1 %. With 52 simulations PUCT never visits it (π = N / ΣN gives it nothing); Gumbel
    AlphaZero considers every legal move once (m = 26) and its improved policy
    π' = softmax(logit + σ(q̂)) makes it the likeliest move, with Gumbel noise as without; without
    noise it is the move played."""
    rules, winning = Rules(5, 0.5), 12

    def evaluate(ps):
        priors = np.stack([p.legal_mask() * 1.0 for p in ps])
        priors[:, winning] = 0.001 * priors[:, :].sum(1) / 0.999
        priors /= priors.sum(1, keepdims=True)
        return priors, np.array([-0.9 if p.history == (winning,) else 0.0 for p in ps])

    puct = Search(evaluate, 52)
    assert puct.run([rules.new()])[0].visits[winning] == 0
    for noise in (False, True):
        search, roots = Search(evaluate, 52, gumbel_actions=26), []
        search.search_games([Job(rules.new(), 52, noise)], lambda g, root, out=roots: out.append(root),
                            np.random.default_rng(3))
        pi = search.policy(roots[0])
        assert int(np.argmax(pi)) == winning and pi[winning] > 0.1  # 100x its prior
        assert np.isclose(pi.sum(), 1.0) and (pi > 0).all()  # mass on every legal move, visited or not
        if not noise:  # (with noise the move is about a draw from π': the Gumbel-max trick)
            assert search.best(roots[0]) == winning


def test_the_improved_policy_moves_mass_by_the_rescaled_q_and_leaves_unvisited_moves_their_prior_ratios():
    """Two visited moves, Q +0.5 and -0.5 (the extremes of the completed Q, rescaled to 1 and 0);
    the others unvisited, completed by the mixed value. π'(a) / π'(b) = P(a) / P(b) · exp(σ(a) - σ(b)),
    σ = (50 + max N) · 0.1 · q̂."""
    root = Node(Rules(5, 0.5).new(), BLACK)
    prior = np.linspace(1, 2, 26)
    root.expand(prior / prior.sum())
    root.value = 0.2
    root.visits[[3, 9]] = [6, 2]
    root.value_sum[[3, 9]] = [3.0, -1.0]  # Q(3) = 0.5, Q(9) = -0.5
    pi = Search(uniform, gumbel_actions=4).policy(root)
    ratio = pi / root.prior
    assert np.isclose(ratio[3] / ratio[9], np.exp(56 * 0.1))
    unvisited = np.delete(np.arange(26), [3, 9])
    assert np.allclose(ratio[unvisited], ratio[unvisited[0]])  # one mixed value for all of them
    mixed = (0.2 + 8 * (root.prior[3] * 0.5 - root.prior[9] * 0.5) / (root.prior[3] + root.prior[9])) / 9
    assert np.isclose(np.log(ratio[unvisited[0]] / ratio[9]), 5.6 * (mixed + 0.5))


def test_below_the_root_gumbel_visits_follow_the_improved_policy():
    """Below the root a simulation takes argmax π'(a) - N(a) / (1 + ΣN), so the visit counts follow
    π'. Where every move is worth what the network says the node is, π' is the prior, and 300
    simulations share out by it within one visit a move (PUCT's, with its √ΣN / (1 + N), were off
    by 1.5 to 2.5 visits on such priors). With values apart, the visits go to better moves than
    the prior's (where each is tried, the improved policy sharpens fast as the visits grow: σ's
    scale is 50 + max N)."""
    prior = np.random.default_rng(0).dirichlet(np.ones(26))

    def simulate(q):
        node = Node(Rules(5, 0.5).new(), BLACK)
        node.expand(prior)
        node.value = 0.1
        for _ in range(300):
            a = Search._interior_action(node)
            node.visits[a] += 1
            node.value_sum[a] += q[a]
        return node.visits / 300

    assert np.abs(simulate(np.full(26, 0.1)) - prior).max() <= 1 / 300
    q = np.linspace(-0.6, 0.6, 26)
    assert simulate(q) @ q > prior @ q + 0.1


def test_the_interior_selection_picks_the_improved_policys_most_under_visited_move_on_random_nodes():
    """_interior_action works in floats over the visited moves only; on 2,000 random 7x7 nodes
    (positions of random games, so some moves illegal; sharp, flat and uniform priors; some
    values tied; at times every legal move visited) it picks what the whole-board formula
    argmax π'(a) - N(a) / (1 + ΣN) picks, π' = Search.policy, ties to the lower index."""
    rng, search = np.random.default_rng(0), Search(uniform, gumbel_actions=4)
    for t in range(2000):
        prior = np.full(50, 0.02) if t % 3 == 0 else rng.dirichlet(np.full(50, rng.choice([0.05, 1.0, 10.0])))
        node = Node(random_position(7, rng), BLACK)
        node.expand(prior)
        node.value = rng.normal() * 0.3
        legal = np.flatnonzero(node.legal)
        seen = rng.choice(legal, rng.integers(0, len(legal) + 1), replace=False)
        node.visits[seen] = rng.integers(1, 6, len(seen))
        node.value_sum[seen] = node.visits[seen] * (rng.choice([-1, 0, 0.5, 1], len(seen)) if t % 2
                                                    else rng.uniform(-1, 1, len(seen)))
        score = search.policy(node) - node.visits / (1 + node.visits.sum())
        assert Search._interior_action(node) == int(np.argmax(np.where(node.legal, score, -np.inf))), t


def test_the_root_selection_over_candidates_is_the_whole_board_one():
    """Sequential Halving's choice among the moves with a given visit count, worked out over the
    candidates in floats, is the whole-board argmax of g + logit + σ(q̂) on 2,000 random 7x7 roots
    (positions of random games, some moves illegal; with and without Gumbel noise)."""
    from fewlabels.rl.go.mcts import _considered_best, _considered_best_fast

    rng = np.random.default_rng(1)
    for t in range(2000):
        prior = np.full(50, 0.02) if t % 3 == 0 else rng.dirichlet(np.full(50, rng.choice([0.05, 1.0, 10.0])))
        root = Node(random_position(7, rng), BLACK)
        root.expand(prior)
        root.value, root.gumbel = rng.normal() * 0.3, rng.gumbel(size=50) * (t % 5 > 0)
        legal = np.flatnonzero(root.legal)
        seen = rng.choice(legal, rng.integers(0, len(legal) + 1), replace=False)
        root.visits[seen] = rng.integers(1, 4, len(seen))
        root.value_sum[seen] = root.visits[seen] * rng.uniform(-1, 1, len(seen))
        for visits in {*[0] * (len(seen) < len(legal)), *root.visits[seen].astype(int).tolist()}:  # with candidates
            assert _considered_best_fast(root, visits) == _considered_best(root, visits), (t, visits)


def test_the_network_evaluator_reads_the_margin_off_the_ownership_head_with_komi_for_the_side_to_move():
    net = PolicyValueNet(5, 5, 8, 1, ownership=True)
    torch.nn.init.zeros_(net.ownership.weight)
    torch.nn.init.constant_(net.ownership.bias, 20.0)  # tanh → 1: the side to move owns every point
    rules = Rules(5, 2.5)
    priors, values, margins = network_evaluator(net, 2, scores=True)([rules.new(), play(rules, "C3")])
    assert margins == pytest.approx([25 - 2.5, 25 + 2.5])  # Black gives komi, White receives it
    assert len(network_evaluator(net, 2)([rules.new()])) == 2


@pytest.mark.parametrize("komi", [False, True])
def test_the_replay_buffer_keeps_the_newest_positions_in_a_ring_as_one_at_a_time_adds_would(komi):
    """With a komi plane the buffer keeps the 0/1 planes as bytes and the komi as one float, and
    gives back the planes as they came."""
    from fewlabels.rl.go.alphazero import ReplayBuffer

    rng, buf = np.random.default_rng(0), ReplayBuffer(5, (1 + komi, 2, 2), 5, ownership=True, komi=komi)
    ring = {k: [None] * 5 for k in ("obs", *buf.keys)}
    slot, size = 0, 0
    for n in (3, 4, 7, 1, 5):  # wraps, overfills, fills exactly
        stones = rng.integers(0, 2, (n, 1, 2, 2)).astype(np.float32)
        komis = ((rng.integers(-20, 20, n) + 0.5) / 49).astype(np.float32)  # komi / N², as planes() gives it
        obs = np.concatenate([stones, np.broadcast_to(komis[:, None, None, None], (n, 1, 2, 2))], 1) if komi else stones
        batch = {"obs": obs, "pi": rng.random((n, 5), np.float32), "z": rng.choice([-1.0, 1.0], n).astype(np.float32),
                 "own": rng.integers(-1, 2, (n, 4)).astype(np.int8), "komi": komis}
        buf.add(batch["obs"].astype(np.float32 if komi else np.uint8), batch["pi"], batch["z"], batch["own"])
        for i in range(n):  # the reference: one position at a time
            for k in ring:
                ring[k][slot] = batch[k][i]
            slot, size = (slot + 1) % 5, min(size + 1, 5)
        assert (buf.next, buf.size) == (slot, size)
        for k in buf.keys:
            stored = getattr(buf, k)[:size]
            assert np.array_equal(stored, np.stack(ring[k][:size])[:, :1] if k == "obs" else np.stack(ring[k][:size]))
        assert np.array_equal(buf.planes(np.arange(size)), np.stack(ring["obs"][:size]).astype(np.float32)), n


def test_symmetries_move_stones_and_policy_together_and_keep_pass():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 1] = 1  # a stone at B1
    pi = torch.zeros(1, 26)
    pi[0, 1], pi[0, 25] = 0.75, 0.25
    seen = set()
    own = x.flatten(1) * 2 - 1  # B1 one player's, every other point the other's
    for k in range(8):
        xs, ps = symmetry(x, pi, k, 5)
        where = int(torch.argmax(xs.flatten()))
        assert ps[0, where] == 0.75 and ps[0, 25] == 0.25
        assert torch.equal(symmetry(x, pi, k, 5, own)[2], xs.flatten(1) * 2 - 1)
        seen.add(where)
    assert len(seen) == 8  # B1 has 8 distinct images


def test_ownership_targets_are_the_final_owners_for_the_side_to_move_and_agree_with_the_result(tmp_path):
    from fewlabels import config as configlib

    cfg = configlib.load(go_config(tmp_path, alphazero={"ownership_weight": 1.0}))
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    obs, pi, z, own, _ = exp.self_play(3)
    assert own.shape == (len(z), 25) and set(np.unique(own)) <= {-1, 0, 1}
    black_to_move = obs[:, -1, 0, 0] == 1  # the last plane: 1 where Black is to move
    for i in range(len(z)):
        black_view = own[i] if black_to_move[i] else -own[i]
        score = black_view.sum() - exp.rules.komi  # Tromp-Taylor from the targets: Black's area - White's
        if z[i] != 0:  # (0: a repetition draw)
            assert np.sign(score) == (z[i] if black_to_move[i] else -z[i])
    # one game's positions share one final board: ± the same targets
    assert (np.abs(own[1]) == np.abs(own[0])).all() and (own[1] == -own[0]).all()


def test_playout_cap_randomisation_keeps_only_the_full_searches_as_training_positions(tmp_path):
    """With full_search_fraction 0.25, about a quarter of the moves are full searches (noise,
    `simulations` visits), the rest fast ones (no noise, `fast_simulations` visits); exactly the
    full ones come back as positions, with the full searches' visits as policy targets. Every
    move here is a temperature move, yet a fast search plays its most visited move (sampled from
    8 visits on 7x7, a pass came up often enough that early self-play games ended after a few
    moves; KataGo keeps a lower temperature there: docs/go.md)."""
    from fewlabels import config as configlib

    cfg = configlib.load(go_config(tmp_path, alphazero={"simulations": 7, "fast_simulations": 2,
                                                        "full_search_fraction": 0.25, "ownership_weight": 1.0,
                                                        "temperature_moves": 1000}))
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    searches, full_pis, search_games = [], [], exp.search.search_games

    def spy(jobs, settle, rng=None):
        current = list(jobs)

        def settle_spy(g, root):
            network = exp.search.evaluate([root.position])[0][0]
            noised = not np.allclose(root.prior, np.where(root.legal, network, 0.0))  # the root's, not the Job's
            if root.legal.sum() == 1:  # (noise over one legal move leaves it at 1)
                noised = current[g].noise
            if current[g].noise:
                full_pis.append(tuple(np.float32(root.visits / root.visits.sum())))
            job, best = current[g], int(np.argmax(root.visits))
            current[g] = settle(g, root)
            searches.append((job.simulations, noised, int(root.visits.sum()), root.position.history[-1] == best))
            return current[g]
        return search_games(jobs, settle_spy, rng)

    exp.search.search_games = spy
    obs, pi, z, own, _ = exp.self_play(6)
    budget, noise, visits, greedy = map(np.array, zip(*searches))
    assert greedy[budget == 2].all() and not greedy[budget == 7].all()  # fast: the best; full: sampled
    assert np.array_equal(visits, budget) and set(visits) == {7, 2}  # every root searched to its own budget
    assert np.array_equal(noise, budget == 7)
    assert len(z) == len(pi) == len(obs) == len(own) == int(noise.sum())
    assert 0.1 < noise.mean() < 0.45, noise.mean()  # binomial, over a few hundred moves
    assert sorted(map(tuple, pi)) == sorted(full_pis)  # the full searches' visits, and only theirs


def test_gumbel_self_play_learns_from_the_improved_policy_and_plays_sequential_halvings_winner(tmp_path):
    """gumbel_actions: every kept position's target is the search's improved policy π' (mass on
    legal moves no simulation visited, unlike N / ΣN), every root has its own Gumbel noise (no
    Dirichlet: the prior is the network's), and after the temperature moves the move played is
    Sequential Halving's winner."""
    from fewlabels import config as configlib

    cfg = configlib.load(go_config(tmp_path, alphazero={"simulations": 8, "gumbel_actions": 4,
                                                        "temperature_moves": 2}))
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    seen, search_games = [], exp.search.search_games

    def spy(jobs, settle, rng=None):
        def settle_spy(g, root):
            network = exp.search.evaluate([root.position])[0][0]
            moved, best = len(root.position.history), exp.search.best(root)
            seen.append((tuple(np.float32(exp.search.policy(root))), root.gumbel.copy(), root.visits.copy(),
                         np.allclose(root.prior, np.where(root.legal, network, 0.0))))
            job = settle(g, root)
            seen[-1] += (moved < 2 or root.position.history[moved] == best,)
            return job
        return search_games(jobs, settle_spy, rng)

    exp.search.search_games = spy
    obs, pi, z, own, _ = exp.self_play(4)
    targets, gumbels, visits, unnoised, winners = zip(*seen)
    assert sorted(map(tuple, pi)) == sorted(targets) and all(unnoised) and all(winners)
    assert all(np.unique(g).size > 1 for g in gumbels)  # a Gumbel draw per move
    assert any(((np.array(t) > 0) & (v == 0)).any() for t, v in zip(targets, visits))
    assert np.allclose(pi.sum(1), 1.0)


def test_komi_randomisation_gives_each_game_its_own_komi_which_the_network_sees(tmp_path):
    """komi_spread: every self-play game draws its komi (the run's plus whole points); each kept
    position's komi plane holds its own game's komi, the replay buffer gives the planes back
    exactly, and play passes the game's komi to the network."""
    from fewlabels import config as configlib

    cfg = configlib.load(go_config(tmp_path, net={"komi_plane": True},
                                   alphazero={"komi_spread": 4.0, "parallel_games": 12, "ownership_weight": 1.0}))
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    drawn, game_rules = [], exp.game_rules
    exp.game_rules = lambda: drawn.append(game_rules()) or drawn[-1]
    obs, pi, z, own, _ = exp.self_play(12)
    assert obs.dtype == np.float32 and obs.shape[1] == 6
    sign = np.where(obs[:, 4, 0, 0] == 1, -1.0, 1.0)  # Black to move receives -komi
    komi = np.round(obs[:, 5, 0, 0] * 25 * sign, 4)
    assert np.allclose(obs[:, 5], obs[:, 5, :1, :1]) and set(komi) == {r.komi for r in drawn}
    assert len(set(komi)) >= 3 and all((k - 24.5) % 1 == 0 for k in komi)  # 24.5 moved by whole points
    assert max(komi) == 24.5  # a komi over 25 (N²) would be a game Black cannot win: none above the run's
    exp.buffer.add(obs, pi, z, own)
    assert np.array_equal(exp.buffer.planes(np.arange(len(z))), obs)
    assert all(np.isfinite(v) for v in exp.update().values())
    search = exp.searcher(0)
    low, high = (search.evaluate([Rules(5, k).new()])[1][0] for k in (0.5, 40.5))
    assert low != high


def test_a_search_of_a_finished_game_is_refused_not_looped():
    """A Job whose position is over has no move: passed in, its root was settled with no visits
    (a NaN π in self-play); returned by settle, the search went round without end. search_games
    says so instead."""
    rules = Rules(5, 0.5)
    over = play(rules, "pass", "pass")
    with pytest.raises(ValueError, match="finished game"):
        Search(uniform, 4).search_games([Job(over, 4)], lambda g, root: None)
    with pytest.raises(ValueError, match="finished game"):
        Search(uniform, 4).search_games([Job(rules.new(), 4)], lambda g, root: Job(over, 4))


def test_a_fast_search_moves_its_game_on_while_a_full_one_still_searches():
    """search_games: every round is one network call with a position from each game. Game 0 plays
    three moves of 2 simulations (1 + 2 rounds each) in the 9 rounds of game 1's one move of 8."""
    rules, calls, settled = Rules(5, 0.5), [], []

    def evaluate(ps):
        calls.append(len(ps))
        return uniform(ps)

    games = [rules.new(), rules.new()]

    def settle(g, root):
        settled.append((g, len(calls), int(root.visits.sum())))
        games[g].play(int(np.argmax(root.visits)))
        return Job(games[g], 2) if g == 0 and len(settled) < 3 else None

    Search(evaluate).search_games([Job(games[0], 2), Job(games[1], 8)], settle)
    assert settled == [(0, 3, 2), (0, 6, 2), (0, 9, 2), (1, 9, 8)] and calls == [2] * 9


def test_an_iteration_that_keeps_no_position_takes_no_gradient_step(tmp_path):
    from fewlabels import config as configlib

    cfg = configlib.load(go_config(tmp_path, alphazero={"fast_simulations": 2, "full_search_fraction": 1e-9,
                                                        "ownership_weight": 1.0}))
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    obs, pi, z, own, _ = exp.self_play(2)
    assert [(a.shape, a.dtype) for a in (obs, pi, z, own)] == [
        ((0, 5, 5, 5), np.uint8), ((0, 26), np.float32), ((0,), np.float32), ((0, 25), np.int8)]
    before = [p.clone() for p in exp.net.parameters()]
    row = exp.train_step(0)
    assert row["updates"] == 0 and exp.buffer.size == 0 and row["game_length"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, exp.net.parameters()))


def test_the_ownership_head_learns_final_owners_of_unseen_games(tmp_path):
    """The last quarter of random 5x5 games' positions: after 150 steps the owners of held-out
    games' points are predicted far better than by 0 (mean o²)."""
    from fewlabels import config as configlib

    rules, rng = Rules(5, 0.5), np.random.default_rng(0)

    def positions(games):
        xs, owns = [], []
        for _ in range(games):
            pos, seen = rules.new(), []
            while not pos.over:
                seen.append((planes(pos, 2), pos.to_play))
                pos.play(int(rng.choice(np.flatnonzero(pos.legal_mask()))), 2)
            final = ownership(pos.board()).ravel()
            for x, colour in seen[3 * len(seen) // 4:]:
                xs.append(x)
                owns.append(final * colour)
        return torch.from_numpy(np.stack(xs)).float(), torch.from_numpy(np.stack(owns)).float()

    x, own = positions(100)
    x_test, own_test = positions(20)
    cfg = configlib.load(go_config(tmp_path, alphazero={"ownership_weight": 1.0, "lr": 0.01}))
    exp = AlphaZeroExperiment(cfg, torch.device("cpu"))
    z, pi = torch.zeros(len(x)), torch.full((len(x), 26), 1 / 26)
    for _ in range(150):
        idx = torch.from_numpy(rng.integers(0, len(x), 64))
        exp.learn(x[idx], pi[idx], z[idx], own=own[idx])
    exp.net.eval()
    with torch.no_grad():
        predicted = exp.net.heads(x_test)[2]
    mse, floor = float(((predicted - own_test) ** 2).mean()), float((own_test ** 2).mean())
    assert mse < 0.5 * floor, (mse, floor)


def test_ppo_plays_only_legal_moves_and_keeps_a_bounded_pool_of_past_selves(tmp_path):
    from fewlabels import config as configlib

    cfg = configlib.load(go_config(tmp_path, algo="ppo", ppo={"parallel_games": 4, "pool_every": 4, "pool_size": 2,
                                                                 "minibatch_size": 32}))
    exp = SelfPlayPPO(cfg, torch.device("cpu"))
    batch, stats = exp.play_games(6)
    chosen = batch["masks"].gather(1, batch["actions"][:, None])
    assert chosen.all() and len(batch["actions"]) > 6 * 5
    exp.net.train()  # learning sees the policy that acted: the ratio is 1 before the first update
    logits, _ = exp.net(batch["obs"].float())
    logp = masked_log_softmax(logits, batch["masks"]).gather(1, batch["actions"][:, None]).squeeze(1)
    assert torch.allclose(logp, batch["logp"], atol=1e-5)
    assert torch.allclose(batch["returns"], batch["advantages"] + batch["values"])
    for step in range(3):
        exp.train_step(step)
    assert len(exp.pool) == 2  # one snapshot per 4 games, the oldest dropped beyond pool_size
    assert not torch.equal(exp.pool[0]["policy_fc.weight"], exp.pool[1]["policy_fc.weight"])


# ---- a tiny trained run for the players and the CLI ---------------------------------------------------
def go_config(tmp_path, algo="alphazero", **sections):
    cfg = {"algo": algo, "family": "go", "name": "t", "game": {"size": 5},
           "net": {"channels": 8, "blocks": 1, "history": 2, "norm": "none" if algo == "ppo" else "batch"},
           "alphazero": {"simulations": 4, "parallel_games": 4, "batch_size": 32},
           "train": {"steps": 8, "log_every": 4, "eval_every": 0, "checkpoint_every": 4},
           "eval": {"games": 2, "simulations": 2, "network_alone": False}}
    for key, value in sections.items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            cfg[key] = value
    path = tmp_path / "go.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("go")
    out = tmp / "run"
    assert main(["train", str(go_config(tmp)), "--out", str(out), "--device", "cpu"]) == 0
    return out


def test_a_run_writes_metrics_report_and_game_diagram(tiny_run):
    rows = RunDir(tiny_run).read_metrics()
    assert any("value_loss" in r for r in rows) and any("win_rate_random" in r for r in rows)
    assert (tiny_run / "report.html").is_file() and (tiny_run / "samples" / "game.png").is_file()


def test_gtp_engine_answers_every_command_and_refuses_bad_arguments(tiny_run):
    from fewlabels.rl.go.load import load_player

    e = GTPEngine(load_player(str(tiny_run), simulations=0), 5, 24.5)
    assert e.handle("1 protocol_version") == "=1 2\n\n"
    assert e.handle("known_command genmove") == "= true\n\n" and e.handle("known_command foo") == "= false\n\n"
    assert "final_score" in e.handle("list_commands")
    assert e.handle("# a comment") is None
    assert e.handle("boardsize 7") == "? unacceptable size\n\n"
    assert e.handle("boardsize x").startswith("? syntax error")
    assert e.handle("boardsize \u00b2").startswith("? syntax error")  # a digit to str.isdigit, not to GTP
    assert e.handle("komi abc").startswith("? syntax error") and e.handle("komi nan").startswith("? syntax error")
    assert e.handle("play b c3") == "=\n\n"
    assert e.handle("play w c3") == "? illegal move\n\n"
    assert e.handle("play purple c4") == "? invalid color\n\n"
    assert e.handle("play b z9") == "? invalid coordinate\n\n"
    assert e.handle("play b") .startswith("? syntax error")
    assert e.handle("frobnicate") == "? unknown command\n\n"
    move = e.handle("genmove w")
    assert move.startswith("= ") and move.strip()[2:].upper() != "C3"
    assert "X" in e.handle("showboard")
    assert e.handle("undo") == "=\n\n" and e.handle("undo") == "=\n\n" and e.handle("undo") == "? cannot undo\n\n"
    assert e.handle("final_score") == "= W+24.5\n\n"
    e.player.policy = lambda position: 1 / 0
    assert e.handle("genmove b") == "? internal error: ZeroDivisionError: division by zero\n\n"  # never a crash
    assert e.handle("quit") == "=\n\n" and e.quit


def test_gtp_process_plays_fewlabels_gtp_and_a_match_writes_sgf(tiny_run, tmp_path):
    from sgfmill import sgf

    command = f"{sys.executable} -m fewlabels gtp {tiny_run} --playouts 0"
    opponent = GTPProcess(command, "self")
    try:
        result = run_match(random_player(1), opponent, 2, 5, 24.5, ("random", "self"), out=tmp_path / "games")
    finally:
        opponent.close()
    assert result["games"] == 2 and result["wins"] + result["losses"] + result["draws"] == 2
    assert result["illegal_moves"] == 0 and set(json.loads((tmp_path / "games" / "match.json").read_text())) >= {
        "games", "wins", "losses", "draws", "win_rate", "ci95"}
    game = sgf.Sgf_game.from_bytes((tmp_path / "games" / "game0001.sgf").read_bytes())
    assert game.get_size() == 5 and game.get_root().get("PB") == "random" and len(game.get_main_sequence()) > 2


def first_legal_player(last: bool = False) -> PolicyPlayer:
    """A deterministic player: the lowest (or highest) legal point, else a pass."""
    def policy(position):
        legal = np.flatnonzero(position.legal_mask())  # the pass (last) is always legal
        return int(legal[-2] if last and len(legal) > 1 else legal[0])

    return PolicyPlayer(policy, "last" if last else "first")


def test_a_match_counts_its_distinct_games():
    """Two deterministic players can only play two games (one per colour): the Wilson interval of
    100 such games would be a lie, so match.json says how many were distinct."""
    result = run_match(first_legal_player(), first_legal_player(last=True), 6, 5, 24.5, ("a", "b"), progress=False)
    assert result["games"] == 6 and result["distinct_games"] == 2
    assert run_match(random_player(1), random_player(2), 6, 5, 24.5, ("a", "b"), progress=False)["distinct_games"] == 6


class Closing(PolicyPlayer):
    closed = 0

    def close(self):
        Closing.closed += 1


def test_a_parallel_match_plays_each_game_as_one_at_a_time_would_and_closes_what_it_spawned(tmp_path):
    """Games played at once (the agent's moves from one batch_policy call over the waiting games)
    are the games played one at a time: each on its own board, the agent Black in the even-numbered
    ones, SGF files by game number; the opponents it spawned are closed when it ends."""
    def agent():
        player = first_legal_player()
        calls = player.calls = []

        def choose(positions, games):  # a different game for every game number, nothing random
            calls.append(len(positions))
            legal = [np.flatnonzero(p.legal_mask()) for p in positions]
            return [int(a[(g * 7 + p.state.move_number()) % len(a)]) for p, g, a in zip(positions, games, legal)]
        player.batch_policy = choose
        return player

    def record(folder, g):
        return re.sub(rb"DT\[[^]]*\]", b"", (folder / f"game{g + 1:04d}.sgf").read_bytes())  # (not the date)

    one = agent()
    alone = run_match(one, Closing(first_legal_player().policy, "first"), 9, 5, 24.5, ("a", "b"),
                      out=tmp_path / "one", progress=False)
    Closing.closed = 0
    many = agent()
    together = run_match(many, Closing(first_legal_player().policy, "first"), 9, 5, 24.5, ("a", "b"),
                         out=tmp_path / "many", progress=False, parallel=4,
                         spawn=lambda k: Closing(first_legal_player().policy, "first"))
    assert max(one.calls) == 1 and max(many.calls) == 4 and together["parallel"] == 4
    assert Closing.closed == 3  # the three it spawned, not the caller's
    assert together["distinct_games"] == 9
    assert {**together, "seconds": 0, "parallel": 0} == {**alone, "seconds": 0, "parallel": 0}
    won = 0
    for g in range(9):
        assert record(tmp_path / "many", g) == record(tmp_path / "one", g)
        assert (b"PB[a]" if g % 2 == 0 else b"PB[b]") in record(tmp_path / "many", g)
        won += (b"RE[B+" if g % 2 == 0 else b"RE[W+") in record(tmp_path / "many", g)  # the agent's colour won
    assert together["wins"] == won and 0 < won < 9, won


def test_training_evaluates_against_mcts_with_its_games_at_once(tmp_path):
    """The evaluation's match path (an in-process opponent copied per game slot) gives a win rate."""
    from fewlabels import config as configlib
    from fewlabels.rl.go.evaluation import evaluate_agent

    cfg = go_config(tmp_path, eval={"games": 4, "simulations": 2, "network_alone": False, "opponents": ["mcts:2"]})
    exp = AlphaZeroExperiment(configlib.load(cfg), torch.device("cpu"))
    sizes = []
    player = exp.player
    exp.player = lambda sims: _recording(player(sims), sizes)
    rates = evaluate_agent(exp, exp.cfg.eval)
    assert 0.0 <= rates["win_rate_mcts2"] <= 1.0 and rates["eval_games"] == 4.0
    assert max(sizes) == 4  # the four games' moves searched together


def _recording(player, sizes):
    choose = player.batch_policy
    player.batch_policy = lambda positions, games: sizes.append(len(positions)) or choose(positions, games)
    return player


def test_a_parallel_match_of_a_run_is_reproducible_and_says_where_a_bad_parallel_is(tiny_run, capsys):
    from fewlabels.rl.go.load import load_player

    def games(parallel):
        agent = load_player(str(tiny_run), simulations=4, sample_moves=8, seed=5)
        sizes = []
        original = agent.batch_policy
        agent.batch_policy = lambda positions, games: sizes.append(len(positions)) or original(positions, games)
        result = run_match(agent, first_legal_player(), 8, 5, 24.5, ("run", "first"), progress=False,
                           parallel=parallel, spawn=lambda k: first_legal_player())
        return result, max(sizes)

    (first, widest), (again, _) = games(4), games(4)
    assert widest == 4 and first["distinct_games"] >= 3, first
    assert {**again, "seconds": 0} == {**first, "seconds": 0}
    assert main(["match", str(tiny_run), "--opponent", "random", "--games", "2", "--parallel", "0"]) == 2
    assert "--parallel is 0" in capsys.readouterr().err
    for w, message in [("0.3", "needs the expected score of an ownership head"), ("-1", "--score-utility is -1")]:
        assert main(["match", str(tiny_run), "--opponent", "random", "--games", "2", "--score-utility", w]) == 2
        assert message in capsys.readouterr().err


def test_sample_moves_makes_a_deterministic_match_play_different_games_reproducibly(tiny_run, capsys):
    """`match --sample-moves K`: while fewer than K moves of a game are played the run draws its
    move from its visit counts (or the network's probabilities), so against a deterministic player the games differ, and
    the same --seed plays the same games; without it there are two games, one per colour."""
    from fewlabels.rl.go.load import load_player

    def games(**kw):
        agent = load_player(str(tiny_run), simulations=0, **kw)
        return run_match(agent, first_legal_player(), 8, 5, 24.5, ("run", "first"), progress=False)

    assert games()["distinct_games"] == 2
    sampled = games(sample_moves=6, seed=3)
    assert sampled["distinct_games"] >= 5, sampled
    again = games(sample_moves=6, seed=3)
    assert {**again, "seconds": 0} == {**sampled, "seconds": 0}
    assert main(["match", str(tiny_run), "--opponent", "random", "--games", "2", "--sample-moves", "-1"]) == 2
    assert "--sample-moves is -1" in capsys.readouterr().err
    # with search too: before move K a drawn move (the openings vary with the seed, never a pass),
    # from move K on the best move, as without sampling
    best = load_player(str(tiny_run), simulations=8).policy
    rules = Rules(5, 24.5)
    late = play(rules, "C3", "B2", "D4")  # 3 moves played
    drawn = [load_player(str(tiny_run), simulations=8, sample_moves=3, seed=s).policy for s in range(8)]
    assert len({p(rules.new()) for p in drawn}) >= 3 and rules.pass_action not in {p(rules.new()) for p in drawn}
    assert {p(late) for p in drawn} == {best(late)}


def test_match_and_gtp_play_a_gumbel_search_when_asked(tiny_run, capsys, tmp_path, monkeypatch):
    """`--gumbel M` (and load_player's gumbel_actions): play with Gumbel AlphaZero's search, no noise,
    so the move is Sequential Halving's winner among the M moves the network ranks first: with
    M = 1 always the network's own choice, whatever the search finds; PUCT by default."""
    from fewlabels.loop import open_run
    from fewlabels.rl.go.load import load_player

    rules = Rules(5, 24.5)
    openings = [(), ("C3",), ("C3", "B2", "D4"), ("C3", "C2", "B3", "D2")]
    alone = load_player(str(tiny_run), simulations=0).policy
    one = load_player(str(tiny_run), simulations=16, gumbel_actions=1)
    puct = load_player(str(tiny_run), simulations=16)
    assert (one.gumbel_actions, puct.gumbel_actions) == (1, 0)
    assert [one.policy(play(rules, *o)) for o in openings] == [alone(play(rules, *o)) for o in openings]
    # M = 4, 16 simulations: the last two moves standing tie on visits (6 each), so the move played
    # is the winner by g + logit + σ(q̂), which is often not the first most visited
    search = open_run(str(tiny_run), "cpu")[2].searcher(16, gumbel_actions=4)
    four, not_most_visited = load_player(str(tiny_run), simulations=16, gumbel_actions=4).policy, 0
    for o in openings + [("B2",), ("C3", "D3"), ("B2", "D4", "C3")]:
        root = search.run([play(rules, *o)])[0]
        prior = search.evaluate([play(rules, *o)])[0][0]
        assert four(play(rules, *o)) == search.best(root) in np.argsort(-prior, kind="stable")[:4]
        not_most_visited += search.best(root) != int(np.argmax(root.visits))
    assert not_most_visited >= 1
    out = tmp_path / "m"
    assert main(["match", str(tiny_run), "--opponent", "random", "--games", "2", "--playouts", "8", "--gumbel", "4",
                 "--out", str(out)]) == 0
    assert json.loads((out / "match.json").read_text())["gumbel_actions"] == 4
    assert main(["match", str(tiny_run), "--opponent", "random", "--games", "2", "--gumbel", "-1"]) == 2
    assert "--gumbel is -1" in capsys.readouterr().err
    # over GTP too: its first move is the Gumbel search's
    import io

    from fewlabels.rl.go.rules import action_to_vertex

    monkeypatch.setattr(sys, "stdin", io.StringIO("genmove b\nquit\n"))
    assert main(["gtp", str(tiny_run), "--playouts", "16", "--gumbel", "4"]) == 0
    root = search.run([rules.new()])[0]
    assert capsys.readouterr().out.lower().startswith(f"= {action_to_vertex(search.best(root), 5).lower()}\n")


@needs_gnugo
def test_gnugo_gets_a_seed_per_game(monkeypatch):
    from fewlabels.rl.go.match import make_player

    sent = []
    original = GTPProcess.send
    monkeypatch.setattr(GTPProcess, "send", lambda self, c: sent.append(c) or original(self, c))
    gnugo, _ = make_player("gnugo:1")
    try:
        result = run_match(first_legal_player(), gnugo, 4, 5, 24.5, ("first", "gnugo"), progress=False)
    finally:
        gnugo.close()
    assert [c for c in sent if c.startswith("set_random_seed")] == [f"set_random_seed {g}" for g in (1, 2, 3, 4)]
    assert result["illegal_moves"] == 0 and 1 <= result["distinct_games"] <= 4


def test_match_cli_prints_the_contract_and_refuses_bad_arguments(tiny_run, capsys):
    assert main(["match", str(tiny_run), "--opponent", "random", "--games", "4", "--playouts", "0"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["games"] == 4 and len(result["ci95"]) == 2
    assert main(["match", str(tiny_run), "--opponent", f"run:{tiny_run}", "--games", "2", "--playouts", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["opponent"] == "run"
    for args, message in ((["--size", "7"], "trained on 5x5 boards"), (["--max-moves", "0"], "--max-moves is 0"),
                          (["--komi", "nan"], "--komi is nan"), (["--playouts", "-1"], "--playouts is -1")):
        assert main(["match", str(tiny_run), "--opponent", "random", "--games", "2", *args]) == 2
        assert message in capsys.readouterr().err


def test_an_opponent_that_does_not_start_or_dies_mid_game_stops_the_match_with_one_sentence(tiny_run, tmp_path,
                                                                                              capsys):
    assert main(["match", str(tiny_run), "--opponent", "no-such-engine --mode gtp", "--games", "2"]) == 2
    assert "does not start" in capsys.readouterr().err
    # an engine that answers the set-up and 12 genmoves, then dies: the first game ends, the second does not
    script = tmp_path / "dies.py"
    script.write_text(textwrap.dedent("""
        import sys
        moves = 0
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "genmove":
                moves += 1
                if moves > 12:
                    sys.exit(3)
                print("= pass\\n", flush=True)
            elif cmd[0] == "list_commands":
                print("= genmove\\nplay\\n", flush=True)
            else:
                print("=\\n", flush=True)
    """))
    out = tmp_path / "games"
    code = main(["match", str(tiny_run), "--opponent", f"{sys.executable} {script}", "--games", "40",
                 "--playouts", "0", "--out", str(out), "--parallel", "2"])  # (an engine each: 20 games)
    err = capsys.readouterr().err
    assert code == 2 and "stopped (exit code 3)" in err and "finished games are kept" in err
    assert len(list(out.glob("*.sgf"))) >= 1


def test_gtp_opponents_of_a_parallel_match_think_at_the_same_time(tiny_run, tmp_path, capsys):
    """Each game's GTP engine is its own process: with 4 games at once their genmoves overlap in
    time (one game after another, as before, they never did)."""
    script, log = tmp_path / "slow.py", tmp_path / "thinking.txt"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        for line in sys.stdin:
            cmd = line.split()
            if not cmd:
                continue
            if cmd[0] == "genmove":
                start = time.time()
                time.sleep(0.3)
                with open({str(log)!r}, "a") as f:
                    f.write(f"{{start}} {{time.time()}}\\n")
                print("= pass\\n", flush=True)
            elif cmd[0] == "list_commands":
                print("= genmove\\nplay\\n", flush=True)
            else:
                print("=\\n", flush=True)
                if cmd[0] == "quit":
                    break
    """))
    assert main(["match", str(tiny_run), "--opponent", f"{sys.executable} {script}", "--games", "4",
                 "--playouts", "0", "--parallel", "4"]) == 0
    assert json.loads(capsys.readouterr().out)["games"] == 4
    spans = sorted(tuple(map(float, line.split())) for line in log.read_text().splitlines())
    assert len(spans) >= 4 and any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans


def test_wilson_interval_matches_the_formula():
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


@needs_gnugo
def test_gnugo_plays_complete_games_against_fewlabels_gtp_with_legal_moves_and_an_agreed_score(tiny_run, tmp_path):
    from fewlabels.rl.go.match import gnugo_command

    ours = GTPProcess(f"{sys.executable} -m fewlabels gtp {tiny_run} --playouts 0", "fewlabels")
    gnugo = GTPProcess(gnugo_command(1), "gnugo")
    try:
        for black, white in ((ours, gnugo), (gnugo, ours)):
            record = play_game(black, white, 5, 24.5, 200, ("a", "b"))
            assert record.reason == "passes"  # complete: no illegal move, no cap
            assert record.reported == record.tromp_taylor  # GNU Go's final_score = Tromp-Taylor
    finally:
        ours.close()
        gnugo.close()


@pytest.mark.slow(seconds=45)
@pytest.mark.parametrize("search", [[], ["--set", "alphazero.gumbel_actions=16"]], ids=["puct", "gumbel"])
def test_alphazero_self_play_learns_to_take_the_whole_5x5_board_from_random(tmp_path, search):
    """With komi 24.5, Black wins only by owning all 25 points. 256 self-play games (about 35 s on
    one core; Gumbel AlphaZero's search 1.2x that) take the search (32 simulations) as Black from
    the untrained network's rate to at least 90 % (60 games as Black, played at once)."""
    from fewlabels import config as configlib
    from fewlabels.loop import open_run

    checkpoint.seed_everything(0)
    cfg = configlib.load_shipped("go/go5_alphazero.yaml", [])
    untrained = against_random(AlphaZeroExperiment(cfg, torch.device("cpu")), 32, 120, seed=7)["as_black"]
    out = tmp_path / "run"
    assert main(["train", "go/go5_alphazero", "--out", str(out), "--device", "cpu", "--set", "train.steps=256",
                 "--set", "alphazero.simulations=16", "--set", "train.eval_every=0", "--set", "eval.games=2",
                 "--set", "eval.simulations=0", "--set", "eval.network_alone=false", *search]) == 0
    trained = against_random(open_run(str(out), "cpu")[2], 32, 120, seed=7)["as_black"]
    assert trained >= 0.9 and trained >= untrained + 0.15, (untrained, trained)  # measured: 0.57 -> 0.98 (Gumbel 0.97)


# ---- resume and bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("algo, cls, heads", [("alphazero", AlphaZeroExperiment, {}),
                                              ("alphazero", AlphaZeroExperiment, {"ownership_weight": 1.0}),
                                              ("alphazero", AlphaZeroExperiment, {"ownership_weight": 1.0,
                                                                                  "score_utility": 0.3}),
                                              ("alphazero", AlphaZeroExperiment, {"full_search_fraction": 0.5,
                                                                                  "fast_simulations": 2}),
                                              ("alphazero", AlphaZeroExperiment, {"komi_spread": 3.0}),
                                              ("alphazero", AlphaZeroExperiment, {"gumbel_actions": 4}),
                                              ("ppo", SelfPlayPPO, {})])
def test_sigterm_mid_run_then_resume_is_bitwise_equal_to_an_uninterrupted_run(tmp_path, monkeypatch, algo, cls,
                                                                               heads):
    net = {"komi_plane": True} if "komi_spread" in heads else {}
    cfg = go_config(tmp_path, algo=algo, train={"steps": 12, "checkpoint_every": 100},
                    alphazero=heads, net=net,
                    ppo={"parallel_games": 4, "pool_every": 4, "minibatch_size": 32},
                    eval={"games": 2, "simulations": 0})
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert main(["train", str(cfg), "--out", str(straight), "--device", "cpu"]) == 0
    train_killed_at_step(monkeypatch, cls, 8, ["train", str(cfg), "--out", str(broken), "--device", "cpu"])
    a, _ = checkpoint.load(RunDir(straight).latest_checkpoint())
    b, _ = checkpoint.load(RunDir(broken).latest_checkpoint())
    for k, v in a["experiment"]["net"].items():
        assert torch.equal(v, b["experiment"]["net"][k]), k
    assert a["experiment"]["rng"] == b["experiment"]["rng"]


@pytest.mark.parametrize("sections, message", [
    ({"eval": {"opponents": ["gnugo"]}}, "eval.opponents 'gnugo' is not an opponent"),
    ({"algo": "ppo", "net": {"norm": "batch"}}, "net.norm is 'batch' with algo ppo"),
    ({"game": {"size": 25}}, "game.size"),
    ({"alphazero": {"simulations": 0}}, "alphazero.simulations"),
    ({"alphazero": {"score_utility": 0.3}}, "alphazero.score_utility is 0.3, but the expected score"),
    ({"alphazero": {"score_utility": float("inf"), "ownership_weight": 1.0}}, "give a finite weight"),
    ({"alphazero": {"full_search_fraction": 0.25, "fast_simulations": 4}}, "a fast search must be smaller"),
    ({"alphazero": {"full_search_fraction": 0}}, "alphazero.full_search_fraction is 0"),
    ({"alphazero": {"komi_spread": 2.0}}, "alphazero.komi_spread is 2.0, but a network that cannot see the komi"),
    ({"alphazero": {"komi_spread": float("inf")}, "net": {"komi_plane": True}}, "alphazero.komi_spread is inf"),
])
def test_bad_go_configs_get_one_sentence_and_exit_2(tmp_path, capsys, sections, message):
    out = tmp_path / "run"
    assert main(["train", str(go_config(tmp_path, **sections)), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_gtp_on_a_run_of_another_family_is_refused(tmp_path, capsys):
    from fewlabels.rl.go.load import load_player

    with pytest.raises(UserError, match="not a run directory"):
        load_player(str(tmp_path))
