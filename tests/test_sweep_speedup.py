"""The speed-up benchmark's workload (benchmarks/sweep_speedup.py): the default params, reduced as documented."""

from pathlib import Path

from aqil.config import parse_params, read_yaml
from aqil.layout import ALL_RUNS
from benchmarks.sweep_speedup import reduced_params

ROOT = Path(__file__).resolve().parents[1]


def test_the_reduced_workload_changes_only_the_cap_and_the_episodes():
    text = (ROOT / "params.yaml").read_text()
    reduced = reduced_params(text, 2000, 0.1)
    before, after = parse_params(read_yaml(text)), parse_params(read_yaml(reduced))  # still valid
    assert after.env.max_episode_steps == 2000
    for run in ALL_RUNS:
        assert getattr(after, run).episodes == round(getattr(before, run).episodes * 0.1), run
    assert after.dqfd250_rl250.demo_episodes == 25
    assert (after.dqn, after.rewards, after.expert, after.seeds) == (before.dqn, before.rewards, before.expert,
                                                                     before.seeds)
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert comments == [line for line in reduced.splitlines() if line.lstrip().startswith("#")]
