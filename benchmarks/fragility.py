"""How fragile is the paper's RL rule? The share of RL500 seeds whose loss goes NaN, per learning rate and epsilon.

One command runs the whole study (hours on one core; it resumes from what results/fragility/fragility.json
already holds for the same settings, so an interrupted run loses at most one seed; --fresh recomputes):

    python benchmarks/fragility.py            # everything below -> results/fragility/fragility.json and .png
    python benchmarks/fragility.py --short    # CI smoke test: 2 seeds, 2 settings, 150 updates, in a temp folder

Everything runs on the library's own training code: ``aqil.runs.train_run`` with the RL500 spec, hence the
stage's learner, agent, strategy, environment and per-run random streams ``run_seed(seed, "rl500")``. Seed N
here is the pipeline's RL500 seed N, and at the paper's setting it follows the same updates bit for bit.

1. horizon -- the paper's setting (lr 1e-5, epsilon_start 0.3), seeds 0..39, each run until its loss is NaN or
   for HORIZON = 20,000 updates. Measured: the latest first NaN is update 5,258 (8,312 over the 160 seeds
   of step 4), and no seed goes NaN between then and 20,000. Hence BUDGET = 10,000.
2. grid -- learning rate {2.5e-6, 5e-6, 1e-5, 2e-5} x epsilon_start {0.3, 0.9}, 40 seeds each. A seed
   "diverged" if a loss within BUDGET updates is NaN or infinite (or a weight is, when stopped there).
   Smaller learning rates diverge later (latest first NaN 15,311 at 5e-6), so every cell runs to HORIZON
   and the json also gives each cell's share within HORIZON. A seed that would diverge only later counts
   as surviving: each share is a lower bound. (A run that ends its 500 episodes sooner is complete.)
3. balance -- full 500-episode runs, seeds 0..39, at the paper's setting and at the grid's most stable
   setting: the share of seeds with an episode of at least 1,000 steps. A run stops once an episode
   reaches 1,000 steps (it has learned) or at its first NaN loss (a NaN network always picks action 0:
   episodes of about ten steps, never 1,000). Only seeds that neither learn nor diverge run all 500.
4. port -- the same test with benchmarks/reference_port.py (an independent implementation of the
   reference's loop, with its own seeding) at the paper's setting, truncated at BUDGET updates. It is
   compared with the pipeline over as many seeds: 160, the grid's 40 plus 120 more horizon runs.
   Fisher's exact test on all 160 and on the first 40. The paper's survival rate (``survival``: the
   chance that 3 independent runs all survive, with an interval from the exact interval of the rate)
   comes from these 160 pipeline seeds.
5. published -- every results/published/rl500/seed<N>.json present is checked against the horizon runs
   (first NaN update must agree).

Truncation: a fit wrapper passed to ``Agent(fit=...)`` calls the learner's own update. It raises ``Stop`` at
the first non-finite loss or at the update limit. Balance runs use a subclass of the paper's ``Learning``
strategy that counts steps and raises ``Stop`` once an episode reaches 1,000. The stage method then never
returns, so ``train_run`` writes nothing. A temporary results folder catches the outputs of a run that
ends all 500 episodes before its limit. Shares come with exact (Clopper-Pearson) 95% intervals.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aqil.config import Params, load_params  # noqa: E402
from aqil.layout import PAPER_RUNS  # noqa: E402
from aqil.runs import RunContext, train_run  # noqa: E402
from aqil.train import Learning  # noqa: E402

RUN = "rl500"
PAPER_LR, PAPER_EPS = 1e-5, 0.3
LEARNING_RATES = (2.5e-6, 5e-6, 1e-5, 2e-5)
EPSILON_STARTS = (0.3, 0.9)
SEEDS = 40
HORIZON = 20_000  # updates of the horizon runs
BUDGET = 10_000  # updates of every truncated run: comfortably above the horizon runs' latest first NaN (see docs)
BALANCE_STEPS = 1_000  # an episode this long = the seed learned to balance
OUT = ROOT / "results" / "fragility"


class Stop(Exception):
    """Raised from inside training to end a run early (budget, NaN, balanced)."""


@dataclasses.dataclass
class Outcome:
    seed: int
    first_nan: int | None  # index of the first non-finite loss (the pipeline's first_non_finite_update)
    updates: int  # updates made
    end: str  # "nan" | "budget" | "balanced" | "finished" (all episodes ran)
    best_steps: int = 0  # longest episode (completed, or the one running when the run stopped)
    weights_finite: bool = True  # at the end of the run


def with_dqn(params: Params, learning_rate: float, epsilon_start: float) -> Params:
    return dataclasses.replace(params, dqn=dataclasses.replace(
        params.dqn, learning_rate=learning_rate, epsilon_start=epsilon_start, on_divergence="record"))


class Counting(Learning):
    """The paper's learning strategy, counting the steps of the running episode; raises ``Stop`` once one
    reaches ``balance`` steps (None: never)."""

    def __init__(self, agent, balance: int | None) -> None:
        super().__init__(agent)
        self.balance, self.steps, self.best = balance, 0, 0

    def store(self, step) -> None:
        self.steps += 1
        self.best = max(self.best, self.steps)
        super().store(step)
        if self.balance is not None and self.steps >= self.balance:
            raise Stop("balanced")

    def end_episode(self, episode):
        self.steps = 0
        return super().end_episode(episode)


def train_rl500(params: Params, seed: int, budget: int | None, balance: int | None = None) -> Outcome:
    """The pipeline's RL500 seed ``seed`` under ``params``, stopped at the first NaN loss, after ``budget``
    updates, or (``balance``) when an episode reaches that many steps; None: no such limit."""
    losses: list[float] = []
    run: dict = {"end": "finished"}

    def method(ctx: RunContext):
        learner = run["learner"] = ctx.learner

        def fit(batch):  # the default update (Agent's), watched
            loss, max_q = learner.update(*batch)
            losses.append(loss)
            if not math.isfinite(loss):
                raise Stop("nan")
            if budget is not None and len(losses) >= budget:
                raise Stop("budget")
            return loss, max_q

        strategy = run["strategy"] = Counting(ctx.agent(fit=fit), balance)
        return ctx.rl(strategy, ctx.episodes), None

    with tempfile.TemporaryDirectory() as results, contextlib.redirect_stderr(io.StringIO()):
        try:
            train_run(PAPER_RUNS[RUN], method, params, seed, Path(results))
        except Stop as stop:
            run["end"] = str(stop)
    bad = np.flatnonzero(~np.isfinite(np.asarray(losses, dtype=np.float64)))
    weights_finite = run["learner"].non_finite_parameters() == 0
    return Outcome(seed, int(bad[0]) if len(bad) else None, len(losses), run["end"], run["strategy"].best,
                   weights_finite)


# -- statistics -------------------------------------------------------------------------------------------

def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return float(ci.low), float(ci.high)


def share(k: int, n: int) -> dict:
    low, high = clopper_pearson(k, n)
    return {"count": k, "seeds": n, "share": k / n, "ci95": [low, high]}


def diverged_within(o: dict, budget: int) -> bool:
    """Diverged within ``budget`` updates: a NaN loss before it, or NaN weights when stopped at it."""
    return (o["first_nan"] is not None and o["first_nan"] < budget) or (
        o["end"] == "budget" and o["updates"] == budget and not o["weights_finite"])


# -- the study, resumable ---------------------------------------------------------------------------------

def atomic_write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    (tmp.write_bytes if isinstance(text, bytes) else tmp.write_text)(text)
    os.replace(tmp, path)


class Study:
    def __init__(self, out: Path, seeds: int, horizon: int, budget: int, resume: bool, log: Callable = print):
        self.out, self.seeds, self.horizon, self.budget, self.log = out, seeds, horizon, budget, log
        self.params = load_params(ROOT / "params.yaml")
        self.file = out / "fragility.json"
        self.data: dict = {}
        if resume and self.file.exists():
            self.data = json.loads(self.file.read_text())
        self.data.setdefault("runs", {})

    def save(self) -> None:
        atomic_write(self.file, json.dumps(self.data, indent=1, sort_keys=True) + "\n")

    def runs(self, key: str, seeds: range, one: Callable[[int], dict]) -> list[dict]:
        """Per-seed outcomes under ``key``, computing (and saving, seed by seed) the ones not stored yet."""
        stored = {o["seed"]: o for o in self.data["runs"].get(key, [])}
        for seed in seeds:
            if seed not in stored:
                stored[seed] = one(seed)
                o = stored[seed]
                self.log(f"{key} seed {seed}: {o['end']} after {o['updates']:,} updates"
                         + (f" (first NaN at {o['first_nan']:,})" if o["first_nan"] is not None else "")
                         + (f", best episode {o['best_steps']:,} steps" if "best_steps" in o else ""))
                self.data["runs"][key] = [stored[s] for s in sorted(stored)]
                self.save()
        return [stored[s] for s in seeds]

    def pipeline(self, lr: float, eps: float, updates: int | None, balance: int | None = None) -> Callable:
        params = with_dqn(self.params, lr, eps)

        def one(seed: int) -> dict:
            return dataclasses.asdict(train_rl500(params, seed, updates, balance))
        return one


def key(kind: str, lr: float, eps: float, updates: int | None) -> str:
    return f"{kind} lr={lr:g} eps={eps:g} updates={updates if updates is not None else 'all'}"


def run_study(args: argparse.Namespace) -> dict:
    study = Study(args.out, args.seeds, args.horizon, args.budget, resume=not args.fresh)
    seeds = range(args.seeds)
    lrs, epss = args.learning_rates, args.epsilon_starts
    result: dict = {"run": RUN, "seeds": args.seeds, "horizon_updates": args.horizon, "budget_updates": args.budget,
                    "paper": {"learning_rate": PAPER_LR, "epsilon_start": PAPER_EPS},
                    "command": "python benchmarks/fragility.py" + (" --short" if args.short else ""),
                    "commit": _commit(), "dqn": dataclasses.asdict(study.params.dqn),
                    "env": dataclasses.asdict(study.params.env)}

    # 1. horizon at the paper's setting
    horizon = study.runs(key("pipeline", PAPER_LR, PAPER_EPS, args.horizon), seeds,
                         study.pipeline(PAPER_LR, PAPER_EPS, args.horizon))
    firsts = [o["first_nan"] for o in horizon if o["first_nan"] is not None]
    result["horizon"] = {"learning_rate": PAPER_LR, "epsilon_start": PAPER_EPS, "updates": args.horizon,
                         "first_nan": {str(o["seed"]): o["first_nan"] for o in horizon},
                         "latest_first_nan": max(firsts) if firsts else None,
                         **share(sum(diverged_within(o, args.horizon) for o in horizon), len(horizon))}
    if firsts and max(firsts) * 2 > args.budget:
        study.log(f"warning: latest first NaN {max(firsts):,} is more than half the budget {args.budget:,}")

    # 2. the grid: every cell runs to the horizon (the paper's cell is step 1's runs); its share is read at the
    # budget, and again at the horizon as a check on later divergence
    cells = []
    for eps in epss:
        for lr in lrs:
            outcomes = study.runs(key("pipeline", lr, eps, args.horizon), seeds, study.pipeline(lr, eps, args.horizon))
            hit = [o for o in outcomes if diverged_within(o, args.budget)]
            late = [o["first_nan"] for o in outcomes if o["first_nan"] is not None]
            cells.append({"learning_rate": lr, "epsilon_start": eps, "paper": (lr, eps) == (PAPER_LR, PAPER_EPS),
                          "updates_budget": args.budget, "diverged_seeds": [o["seed"] for o in hit],
                          **share(len(hit), len(outcomes)),
                          "latest_first_nan": max(late, default=None),
                          "by_horizon": {"updates": args.horizon,
                                         **share(sum(diverged_within(o, args.horizon) for o in outcomes),
                                                 len(outcomes))}})
    result["grid"] = cells

    # 3. balance: full runs at the paper's setting and the most stable one (lowest share; ties: the larger lr)
    stable = min(cells, key=lambda c: (c["share"], -c["learning_rate"]))
    result["most_stable"] = {"learning_rate": stable["learning_rate"], "epsilon_start": stable["epsilon_start"]}
    balance = []
    if not args.skip_balance:
        settings = [(PAPER_LR, PAPER_EPS)]
        if (stable["learning_rate"], stable["epsilon_start"]) != (PAPER_LR, PAPER_EPS):
            settings.append((stable["learning_rate"], stable["epsilon_start"]))
        for lr, eps in settings:
            outcomes = study.runs(key("balance", lr, eps, None), range(args.balance_seeds),
                                  study.pipeline(lr, eps, None, BALANCE_STEPS))
            grid = {o["seed"]: o for o in study.data["runs"].get(key("pipeline", lr, eps, args.horizon), [])}
            same = [o["first_nan"] == grid[o["seed"]]["first_nan"] for o in outcomes if o["seed"] in grid and (
                (o["first_nan"] or 0) < args.horizon and (grid[o["seed"]]["first_nan"] or 0) < args.horizon)]
            balance.append({"learning_rate": lr, "epsilon_start": eps, "episode_steps": BALANCE_STEPS,
                            "first_nan_as_grid": f"{sum(same)} of {len(same)} seeds (NaN before {args.horizon:,})",
                            "source": "full runs (stopped once learned or NaN)",
                            "balanced_seeds": [o["seed"] for o in outcomes if o["end"] == "balanced"],
                            "diverged_before_balancing": sum(o["end"] == "nan" for o in outcomes),
                            **share(sum(o["end"] == "balanced" for o in outcomes), len(outcomes))})
    result["balance"] = balance

    # 4. the independent port, against the pipeline's paper cell
    if not args.skip_port:
        from benchmarks.reference_port import PortConfig, run_port

        def port_one(seed: int) -> dict:
            r = run_port(PortConfig(learning_rate=PAPER_LR, epsilon_start=PAPER_EPS), seed, args.budget)
            return {"seed": seed, "first_nan": r.first_nan, "updates": r.updates,
                    "end": "nan" if r.first_nan is not None else "budget" if r.updates >= args.budget else "finished",
                    "weights_finite": r.weights_finite}

        port = study.runs(key("port", PAPER_LR, PAPER_EPS, args.budget), range(args.port_seeds), port_one)
        # the pipeline over the same number of seeds (beyond the grid's: more horizon runs at the paper's setting)
        ours = study.runs(key("pipeline", PAPER_LR, PAPER_EPS, args.horizon), range(args.port_seeds),
                          study.pipeline(PAPER_LR, PAPER_EPS, args.horizon))
        from scipy.stats import fisher_exact

        def compare(n: int) -> dict:
            k_port = sum(diverged_within(o, args.budget) for o in port[:n])
            k_ours = sum(diverged_within(o, args.budget) for o in ours[:n])
            return {"port": share(k_port, n), "pipeline": share(k_ours, n),
                    "fisher_exact_p": float(fisher_exact([[k_port, n - k_port], [k_ours, n - k_ours]]).pvalue)}

        result["port"] = {"learning_rate": PAPER_LR, "epsilon_start": PAPER_EPS, "updates_budget": args.budget,
                          "init": "keras (he_normal hidden, glorot_uniform output)", **compare(len(port)),
                          "first_seeds": {"seeds": min(len(port), args.seeds), **compare(min(len(port), args.seeds))},
                          "diverged_per_block": [  # [port, pipeline] per block of args.seeds seeds
                              [sum(diverged_within(o, args.budget) for o in runs[i:i + args.seeds])
                               for runs in (port, ours)] for i in range(0, len(port), args.seeds)],
                          "first_nan": {str(o["seed"]): o["first_nan"] for o in port}}

    # 5. the published records, checked against the horizon runs
    checks = []
    for o in study.data["runs"][key("pipeline", PAPER_LR, PAPER_EPS, args.horizon)]:
        path = ROOT / "results" / "published" / RUN / f"seed{o['seed']}.json"
        if path.exists():
            m = json.loads(path.read_text())["metrics"]
            checks.append({"seed": o["seed"], "published_diverged": m["diverged"],
                           "published_first_nan": m["first_non_finite_update"], "study_first_nan": o["first_nan"],
                           "agree": m["first_non_finite_update"] == o["first_nan"] if o["first_nan"] is not None
                           else (not m["diverged"] or m["first_non_finite_update"] >= args.horizon)})
    result["published_check"] = checks

    # survival of three independent reference runs at the paper's rate: over every pipeline seed run at the
    # paper's setting (the port check's, else the grid's)
    cell = next((c for c in cells if c["paper"]), None)
    if "port" in result:
        cell = {**cell, **result["port"]["pipeline"]}
    if cell is not None:
        low, high = cell["ci95"]
        p = 1 - cell["share"]
        result["survival"] = {"runs": 3, "seeds": cell["seeds"], "p_survive": p, "p_all_survive": p ** 3,
                              "ci95": [(1 - high) ** 3, (1 - low) ** 3]}
        # the reference's RL500 (epsilon 0.3) and its earlier RL250 (epsilon 0.9), both finite, at lr 1e-5
        other = next((c for c in cells if c["learning_rate"] == PAPER_LR and c["epsilon_start"] == 0.9), None)
        if other is not None:
            result["survival_rl500_and_rl250"] = {
                "p_both_survive": p * (1 - other["share"]),
                "ci95": [(1 - high) * (1 - other["ci95"][1]), (1 - low) * (1 - other["ci95"][0])],
                "note": "product of the two cells' exact bounds (conservative)"}
    result["commit_end"] = _commit()
    study.data.update(result)
    study.save()
    figure(study.data, args.out / "fragility.png")
    return study.data


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "aqil"],
                           capture_output=True, text=True, cwd=ROOT)
    return proc.stdout.strip() + ("-dirty(aqil)" if dirty.stdout.strip() else "")


def figure(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=150)
    colours = {0.3: "tab:blue", 0.9: "tab:orange"}
    later = False  # some cell diverges more often by the horizon than by the budget
    for i, eps in enumerate(sorted({c["epsilon_start"] for c in data["grid"]})):
        cells = sorted((c for c in data["grid"] if c["epsilon_start"] == eps), key=lambda c: c["learning_rate"])
        x = np.array([c["learning_rate"] for c in cells]) * (1.0 + 0.03 * (2 * i - 1))  # dodge the error bars
        y = np.array([c["share"] for c in cells])
        err = np.array([[c["share"] - c["ci95"][0], c["ci95"][1] - c["share"]] for c in cells]).T
        label = f"epsilon_start = {eps:g}" + (" (paper)" if eps == data["paper"]["epsilon_start"] else "")
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, color=colours.get(eps), label=label)
        late = np.array([c["by_horizon"]["share"] for c in cells])
        if (late != y).any():
            ax.scatter(x, late, marker="^", s=30, facecolors="none", edgecolors=colours.get(eps), zorder=4)
            later = True
    paper = next((c for c in data["grid"] if c["paper"]), None)
    if paper is not None:
        ax.scatter([paper["learning_rate"] * 0.97], [paper["share"]], s=260, facecolors="none", edgecolors="black",
                   linewidths=1.8, zorder=5, label="paper's setting (lr 1e-5, eps 0.3)")
    if later:
        ax.scatter([], [], marker="^", s=30, facecolors="none", edgecolors="grey",
                   label=f"same seeds, within {data['horizon_updates']:,} updates")
    n = data["grid"][0]["seeds"]
    ax.set_xscale("log")
    lrs = sorted({c["learning_rate"] for c in data["grid"]})
    ax.set_xticks(lrs, [f"{v:g}" for v in lrs])
    ax.minorticks_off()
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("learning rate (SGD, momentum 0.95)")
    ax.set_ylabel("share of seeds whose loss goes NaN")
    ax.set_title(f"RL500: diverged share within {data['budget_updates']:,} updates ({n} seeds each, exact 95% CI)",
                 fontsize=9.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8.5, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write(path, buffer.getvalue())


def main_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true",
                        help="CI smoke test: 2 seeds, 2 settings, 150 updates, no balance runs, in a temporary folder")
    parser.add_argument("--out", type=Path, default=None, help=f"output folder (default: {OUT.relative_to(ROOT)})")
    parser.add_argument("--seeds", type=int, default=SEEDS, help="seeds per setting (default: %(default)s)")
    parser.add_argument("--horizon", type=int, default=HORIZON, help="updates of every grid run (default: %(default)s)")
    parser.add_argument("--budget", type=int, default=BUDGET, help="updates the shares count (default: %(default)s)")
    parser.add_argument("--balance-seeds", type=int, default=SEEDS)
    parser.add_argument("--port-seeds", type=int, default=4 * SEEDS,
                        help="seeds of the port check, for the port and the pipeline (default: %(default)s)")
    parser.add_argument("--skip-balance", action="store_true")
    parser.add_argument("--skip-port", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="ignore runs stored in the output's fragility.json")
    args = parser.parse_args(argv)
    args.learning_rates, args.epsilon_starts = LEARNING_RATES, EPSILON_STARTS
    if args.short:
        args.seeds = args.port_seeds = args.balance_seeds = 2
        args.horizon = args.budget = 150
        args.learning_rates, args.epsilon_starts = (PAPER_LR, 2e-5), (PAPER_EPS,)
        args.skip_balance, args.fresh = True, True
    elif args.out is None:
        args.out = OUT
    return args


def main(argv: list[str] | None = None) -> None:
    args = main_args(argv)
    if args.out is None:  # --short without --out
        with tempfile.TemporaryDirectory() as tmp:
            args.out = Path(tmp)
            data = run_study(args)
    else:
        data = run_study(args)
    grid = ", ".join(f"lr {c['learning_rate']:g} eps {c['epsilon_start']:g}: {c['count']}/{c['seeds']}"
                     for c in data["grid"])
    print(f"diverged within {data['budget_updates']:,} updates -- {grid}")


if __name__ == "__main__":
    main()
