"""Recurrent actor-critic agents for partially observable Catch (Ba et al. 2016, Section 4.4).

An agent reads one frame x(t) (the flattened ``size x size`` grid) per step, updates a
recurrent core, and from the core's hidden state h(t) outputs a policy π(a | h(t)) over the
three actions and a value estimate V(h(t)). Three cores, everything else shared:

* ``"irnn"``: h(t+1) = ReLU(W h(t) + C x(t) + b), W initialised to the identity
  (Le, Jaitly, Hinton 2015);
* ``"lstm"``: ``nn.LSTMCell``;
* ``"fast_weights"``: :class:`fwbook.core.models.FastWeightsCore` (Eq. 1-2, layer norm, S inner
  steps) driven by C x(t) + b.

Training is synchronous advantage actor-critic (A2C): B games run in lockstep
(:class:`fwbook.rl.catch.VectorCatch`), the whole episode is unrolled, and the loss per step is

    - log π(a_t | h_t) (G_t - V(h_t))  +  c_v (G_t - V(h_t))²  -  β H[π(· | h_t)]

with whole-episode (Monte-Carlo) discounted returns G_t = Σ_k γ^(k-t) r_k, the advantage
treated as a constant in the policy term, and backpropagation through the whole episode.
The paper used A3C (Mnih et al. 2016): asynchronous workers with n-step returns and RMSProp;
here one process, whole episodes and Adam (see the chapter's deviations box).

Run from the command line::

    python -m fwbook.rl.agents paper --out results/catch --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fwbook.rl.catch import NUM_ACTIONS, VectorCatch, check_game_size
from fwbook.core.models import FastWeightsCore
from fwbook.core.records import git_commit, write_json_atomic

CORES = ("fast_weights", "irnn", "lstm")
PROFILES = ("smoke", "quick", "paper")
RECORD_KIND = "catch_a2c"
RECORD_SCHEMA = 1
REPO_ROOT = Path(__file__).resolve().parents[3]
RESULTS_DIR = REPO_ROOT / "results" / "catch"


@dataclass(frozen=True)
class AgentConfig:
    """Everything that defines one training run (stored verbatim in its record)."""

    core: str = "fast_weights"  # one of CORES
    size: int = 10  # Catch grid: size x size, episodes last size - 1 steps
    visible_steps: int = 3  # frames (from the first) in which the ball is drawn
    hidden: int = 64  # H, units of the recurrent core
    batch: int = 32  # B, games played in lockstep per update
    updates: int = 1000  # gradient updates; episodes seen = updates * batch
    lr: float = 1e-3  # Adam learning rate
    gamma: float = 0.99  # discount γ of the returns
    entropy_coef: float = 0.01  # β, entropy bonus
    value_coef: float = 0.5  # c_v, weight of the squared value error
    grad_clip: float = 5.0  # max global gradient norm
    log_every: int = 10  # updates per point on the learning curve
    eval_episodes: int = 1000  # greedy-policy episodes for the final score
    decay: float = 0.95  # λ (fast weights only; paper default)
    fast_lr: float = 0.5  # η (fast weights only; paper default)
    inner_steps: int = 1  # S (fast weights only; paper default)
    memory: str = "efficient"  # FastWeightsCore form: "efficient" (Eq. 4) or "explicit"

    def __post_init__(self) -> None:
        if self.core not in CORES:
            raise ValueError(f"core must be one of {', '.join(CORES)}; got {self.core!r}")
        check_game_size(self.size, self.visible_steps)
        for name in ("hidden", "batch", "updates", "log_every", "eval_episodes", "inner_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "grad_clip"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# Profiles: the game and the budget. Cores and seeds are chosen by the caller.
PROFILE_CONFIGS = {
    # seconds: a tiny game, a few updates; only checks that everything runs
    "smoke": dict(size=5, visible_steps=2, hidden=16, batch=8, updates=12, log_every=4,
                  eval_episodes=64),
    # a few minutes for 3 cores x 3 seeds on 2 CPU cores
    "quick": dict(size=8, visible_steps=2, hidden=32, batch=32, updates=1500, log_every=50,
                  eval_episodes=1000),
    # 3 cores x 10 seeds, two single-threaded workers on a 2-core CPU: well under an hour
    "paper": dict(size=12, visible_steps=2, hidden=64, batch=32, updates=5000, log_every=50,
                  eval_episodes=2000),
}
PROFILE_SEEDS = {"smoke": (0, 1, 2), "quick": (0, 1, 2), "paper": tuple(range(10))}


def profile_config(profile: str, core: str) -> AgentConfig:
    """The :class:`AgentConfig` a profile uses for one core."""
    if profile not in PROFILE_CONFIGS:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    return AgentConfig(core=core, **PROFILE_CONFIGS[profile])


def config_hash(config: AgentConfig | dict) -> str:
    """Short hash of a configuration: a cached record is used only when this matches."""
    data = config.to_dict() if isinstance(config, AgentConfig) else dict(config)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Recurrent cores with one step API: initial_state(B, like) and step(x (B, I), state)
# --------------------------------------------------------------------------------------------

class IRNNCore(nn.Module):
    """h(t+1) = ReLU(W h(t) + C x(t) + b), W = I at initialisation (Le et al. 2015)."""

    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.input = nn.Linear(inputs, hidden)  # C, b
        self.recurrent = nn.Parameter(torch.eye(hidden))  # W (H, H)
        self.hidden = hidden

    def initial_state(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(batch, self.hidden)  # h(0) = 0

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(h @ self.recurrent.T + self.input(x))  # (B, H)
        return h, h


class LSTMCore(nn.Module):
    """``nn.LSTMCell``; the state is (h, c)."""

    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.cell = nn.LSTMCell(inputs, hidden)
        self.hidden = hidden

    def initial_state(self, batch: int, like: torch.Tensor):
        zeros = like.new_zeros(batch, self.hidden)
        return (zeros, zeros)

    def step(self, x: torch.Tensor, state) -> tuple[tuple, torch.Tensor]:
        h, c = self.cell(x, state)  # (B, H) each
        return (h, c), h


class FastWeightsAgentCore(nn.Module):
    """C x(t) + b, then one step of :class:`fwbook.core.models.FastWeightsCore` (Eq. 1-2)."""

    def __init__(self, inputs: int, hidden: int, decay: float, fast_lr: float,
                 inner_steps: int, memory: str):
        super().__init__()
        self.input = nn.Linear(inputs, hidden)  # C, b
        self.core = FastWeightsCore(hidden, decay, fast_lr, inner_steps, layer_norm=True,
                                    memory=memory, recurrent_init=0.05)
        self.hidden = hidden

    def initial_state(self, batch: int, like: torch.Tensor):
        return self.core.initial_state(batch, like)  # h(0) = 0, A(0) = 0

    def step(self, x: torch.Tensor, state):
        state, _ = self.core.step(self.input(x), state)  # drive = C x(t) + b  (B, H)
        return state, state.h


class CatchAgent(nn.Module):
    """Recurrent core -> policy logits (3) and value (1) from the hidden state."""

    def __init__(self, config: AgentConfig):
        super().__init__()
        inputs = config.size * config.size
        if config.core == "irnn":
            self.core = IRNNCore(inputs, config.hidden)
        elif config.core == "lstm":
            self.core = LSTMCore(inputs, config.hidden)
        else:
            self.core = FastWeightsAgentCore(inputs, config.hidden, config.decay,
                                             config.fast_lr, config.inner_steps, config.memory)
        self.policy = nn.Linear(config.hidden, NUM_ACTIONS)
        self.value = nn.Linear(config.hidden, 1)

    def initial_state(self, batch: int, like: torch.Tensor):
        return self.core.initial_state(batch, like)

    def step(self, frame: torch.Tensor, state):
        """One frame (B, size, size) -> (logits (B, 3), value (B,), new state)."""
        state, h = self.core.step(frame.flatten(1), state)  # h (B, H)
        return self.policy(h), self.value(h).squeeze(1), state


def play(agent: CatchAgent, env: VectorCatch, generator: Optional[torch.Generator] = None,
         greedy: bool = False) -> dict:
    """Play one batch of episodes.

    Args:
        generator: CPU generator for sampling actions (ignored when greedy).
        greedy: take the most likely action instead of sampling.
    Returns:
        dict of (B, T) tensors ``log_probs``, ``entropies``, ``values``, ``rewards`` and
        ``actions`` (T = episode length).
    """
    frame = env.reset()  # (B, S, S)
    state = agent.initial_state(env.num_envs, frame)
    out = {key: [] for key in ("log_probs", "entropies", "values", "rewards", "actions")}
    done = False
    while not done:
        logits, value, state = agent.step(frame, state)  # (B, 3), (B,)
        log_pi = F.log_softmax(logits, dim=1)  # (B, 3)
        if greedy:
            action = logits.argmax(1)
        else:
            probs = log_pi.detach().exp().cpu()
            action = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(frame.device)
        frame, reward, done = env.step(action)
        out["log_probs"].append(log_pi.gather(1, action[:, None]).squeeze(1))
        out["entropies"].append(-(log_pi.exp() * log_pi).sum(1))
        out["values"].append(value)
        out["rewards"].append(reward)
        out["actions"].append(action)
    return {key: torch.stack(values, 1) for key, values in out.items()}  # (B, T)


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = Σ_{k>=t} γ^(k-t) r_k for rewards (B, T); returns (B, T)."""
    returns = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in range(rewards.shape[1] - 1, -1, -1):
        running = rewards[:, t] + gamma * running
        returns[:, t] = running
    return returns


def a2c_loss(episode: dict, config: AgentConfig) -> tuple[torch.Tensor, dict]:
    """Actor-critic loss on one batch of whole episodes (see the module docstring)."""
    returns = discounted_returns(episode["rewards"], config.gamma)  # (B, T)
    advantage = returns - episode["values"]  # (B, T)
    policy_loss = -(episode["log_probs"] * advantage.detach()).mean()
    value_loss = advantage.pow(2).mean()
    entropy = episode["entropies"].mean()
    loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
    return loss, {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
                  "entropy": entropy.item()}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def evaluate(agent: CatchAgent, config: AgentConfig, seed: int, device: torch.device) -> float:
    """Catch rate of the greedy policy on ``config.eval_episodes`` fresh games."""
    env = VectorCatch(config.eval_episodes, config.size, config.visible_steps, device,
                      seed=10_000 + seed)  # games the training run never drew from
    with torch.no_grad():
        episode = play(agent, env, greedy=True)
    return float((episode["rewards"][:, -1] > 0).float().mean())


def _git_commit() -> str:
    """HEAD, with ``-dirty`` when the code a Catch run uses differs from it."""
    return git_commit(REPO_ROOT, ["src/fwbook/rl/catch.py", "src/fwbook/rl/agents.py",
                                  "src/fwbook/core/models.py"])


def record_name(config: AgentConfig, seed: int, profile: Optional[str] = None) -> str:
    prefix = f"{profile}_" if profile else ""
    return f"{prefix}{config.core}_seed{seed}.json"


def write_record(record: dict, path: str | Path) -> Path:
    """Write a record as JSON atomically (temporary file renamed into place)."""
    return write_json_atomic(path, record)


def train(config: AgentConfig, seed: int = 0, device: str = "auto",
          out: Optional[str | Path] = None, quiet: bool = False,
          profile: Optional[str] = None) -> dict:
    """Train one agent with A2C and return its run record.

    Args:
        config: the run's :class:`AgentConfig`.
        seed: seeds the weights, the games and the action sampling (deterministic on CPU).
        device: "auto", "cpu", "cuda", ...
        out: a JSON file, or a directory (the file is named by profile, core and seed).
        quiet: no progress bar.
        profile: name stored in the record.
    Returns:
        the record: config, config_hash, seed, profile, curves (episodes, mean_return,
        catch_rate per point), final greedy catch rate, wall time, device, versions.
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    commit, started = _git_commit(), time.strftime("%Y-%m-%dT%H:%M:%S%z")  # the code that ran
    torch.manual_seed(seed)  # initial weights
    agent = CatchAgent(config).to(device)
    env = VectorCatch(config.batch, config.size, config.visible_steps, device, seed=seed)
    sampler = torch.Generator().manual_seed(seed + 1)  # action sampling
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr)
    curves = {"update": [], "episodes": [], "mean_return": [], "catch_rate": [], "entropy": []}
    window_returns, window_entropy = [], []
    start = time.perf_counter()
    bar = tqdm(range(1, config.updates + 1), disable=quiet, leave=False,
               desc=f"{config.core} seed {seed}")
    for update in bar:
        episode = play(agent, env, sampler)
        loss, parts = a2c_loss(episode, config)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(agent.parameters(), config.grad_clip)
        optimizer.step()
        window_returns.append(episode["rewards"].sum(1).mean().item())
        window_entropy.append(parts["entropy"])
        if update % config.log_every == 0 or update == config.updates:
            mean_return = float(np.mean(window_returns))
            curves["update"].append(update)
            curves["episodes"].append(update * config.batch)
            curves["mean_return"].append(mean_return)
            curves["catch_rate"].append((mean_return + 1) / 2)  # return is +1 or -1
            curves["entropy"].append(float(np.mean(window_entropy)))
            window_returns, window_entropy = [], []
            bar.set_postfix(catch=f"{curves['catch_rate'][-1]:.2f}")
    train_seconds = time.perf_counter() - start
    final = evaluate(agent, config, seed, device)
    record = {
        "kind": RECORD_KIND, "schema": RECORD_SCHEMA, "profile": profile,
        "config": config.to_dict(), "config_hash": config_hash(config), "seed": seed,
        "curves": curves, "final_greedy_catch_rate": final,
        "wall_time_s": time.perf_counter() - start, "train_time_s": train_seconds,
        "device": {"type": device.type,
                   "name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
                   "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__},
        "commit": commit, "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if out is not None:
        out = Path(out)
        if out.suffix != ".json":
            out = out / record_name(config, seed, profile)
        record["path"] = str(out)
        write_record(record, out)
    return record


def _train_job(job: tuple) -> dict:
    profile, core, seed, device, out = job
    torch.set_num_threads(1)
    return train(profile_config(profile, core), seed, device, out, quiet=True, profile=profile)


def run_profile(profile: str = "quick", cores: Sequence[str] = CORES,
                seeds: Optional[Sequence[int]] = None, device: str = "cpu",
                out: Optional[str | Path] = None, workers: int = 1,
                quiet: bool = False) -> list[dict]:
    """Train every (core, seed) of a profile; returns the records in (core, seed) order.

    ``workers > 1`` runs jobs in that many single-threaded processes.
    """
    seeds = PROFILE_SEEDS[profile] if seeds is None else tuple(seeds)
    jobs = [(profile, core, seed, device, out) for core in cores for seed in seeds]
    if workers <= 1:
        torch.set_num_threads(1)
        records = []
        for job in jobs:
            records.append(_train_job(job))
            if not quiet:
                r = records[-1]
                print(f"{r['config']['core']:>12} seed {r['seed']}: greedy catch rate "
                      f"{r['final_greedy_catch_rate']:.3f} in {r['wall_time_s']:.1f} s",
                      flush=True)
        return records
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        records = []
        for r in pool.imap(_train_job, jobs):
            records.append(r)
            if not quiet:
                print(f"{r['config']['core']:>12} seed {r['seed']}: greedy catch rate "
                      f"{r['final_greedy_catch_rate']:.3f} in {r['wall_time_s']:.1f} s",
                      flush=True)
    return records


def load_records(directory: str | Path = RESULTS_DIR, profile: str = "paper",
                 cores: Sequence[str] = CORES, seeds: Optional[Sequence[int]] = None
                 ) -> list[dict]:
    """Read a profile's committed records, checking each against the profile's config.

    Raises:
        FileNotFoundError: a (core, seed) record is missing.
        ValueError: a record was made with a different configuration (hash mismatch).
    """
    directory = Path(directory)
    seeds = PROFILE_SEEDS[profile] if seeds is None else tuple(seeds)
    records = []
    for core in cores:
        config = profile_config(profile, core)
        for seed in seeds:
            path = directory / record_name(config, seed, profile)
            if not path.exists():
                raise FileNotFoundError(f"no record {path}; run `python -m fwbook.rl.agents "
                                        f"{profile} --out {directory}` first")
            record = json.loads(path.read_text())
            if record.get("config_hash") != config_hash(config):
                raise ValueError(f"{path} was made with a different configuration than the "
                                 f"{profile!r} profile now defines; rerun it")
            records.append(record)
    return records


# --------------------------------------------------------------------------------------------
# Summaries and figures
# --------------------------------------------------------------------------------------------

def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - window, 0)
    return (cumulative[idx] - cumulative[lo]) / (idx - lo)


def episodes_to_reach(record: dict, threshold: float, window: int = 4) -> Optional[int]:
    """Episodes until the smoothed training catch rate first reaches ``threshold`` (or None)."""
    rates = _smooth(np.asarray(record["curves"]["catch_rate"]), window)
    hits = np.nonzero(rates >= threshold)[0]
    return int(record["curves"]["episodes"][hits[0]]) if len(hits) else None


def summarize(records: Sequence[dict], threshold: float = 0.8, stable: float = 0.95
              ) -> list[dict]:
    """One row per core, aggregated over its seeds.

    Columns: ``final_*`` greedy catch rate at the end; ``auc_*`` the mean training catch rate
    over the whole run (area under the learning curve / its length); ``episodes_to_threshold``
    per seed (None where the smoothed training catch rate never reached ``threshold``) and
    ``reach_*`` their mean and spread, counting a seed that never got there as the whole
    budget; ``worst_after_stable``: the lowest smoothed training catch rate of any seed after
    it first reached ``stable`` (how steady learning stays; None if no seed got there);
    ``wall_time_s_*`` per-run wall time.
    """
    rows = []
    for core in CORES:
        group = [r for r in records if r["config"]["core"] == core]
        if not group:
            continue
        finals = np.array([r["final_greedy_catch_rate"] for r in group])
        areas = np.array([np.mean(r["curves"]["catch_rate"]) for r in group])
        reach = [episodes_to_reach(r, threshold) for r in group]
        budget = [r["curves"]["episodes"][-1] for r in group]
        reach_or_budget = np.array([b if e is None else e for e, b in zip(reach, budget)], float)
        after = []
        for r in group:
            rates = _smooth(np.asarray(r["curves"]["catch_rate"]), 4)
            hits = np.nonzero(rates >= stable)[0]
            if len(hits):
                after.append(float(rates[hits[0]:].min()))
        rows.append({
            "core": core, "seeds": [r["seed"] for r in group],
            "final_mean": float(finals.mean()), "final_std": float(finals.std(ddof=0)),
            "auc_mean": float(areas.mean()), "auc_std": float(areas.std(ddof=0)),
            "episodes_to_threshold": reach, "threshold": threshold,
            "reach_mean": float(reach_or_budget.mean()),
            "reach_std": float(reach_or_budget.std(ddof=0)),
            "stable": stable, "worst_after_stable": min(after) if after else None,
            "wall_time_s_mean": float(np.mean([r["wall_time_s"] for r in group])),
            "wall_time_s_total": float(np.sum([r["wall_time_s"] for r in group])),
        })
    return rows


def elapsed_span_s(records: Sequence[dict]) -> float:
    """Seconds from the first run's start to the last run's end (runs may overlap in workers)."""
    from datetime import datetime

    ends = [datetime.strptime(r["finished"], "%Y-%m-%dT%H:%M:%S%z").timestamp() for r in records]
    starts = [end - r["wall_time_s"] for end, r in zip(ends, records)]
    return max(ends) - min(starts)


def _compare(fast: float, other: float, noise: float, higher_is_better: bool) -> str:
    margin = (fast - other) if higher_is_better else (other - fast)
    if margin == 0:
        return "tie"
    return "clear" if margin > noise else "within noise" if margin > 0 else "against"


def learning_speed_verdict(rows: Sequence[dict]) -> str:
    """A short paragraph, computed from :func:`summarize` rows: do fast weights learn fastest?

    Two measures of speed, each against the *better* of the other cores on that measure:
    episodes until the training catch rate first reaches the threshold (fewer is faster) and
    the mean training catch rate over the whole run (higher is faster). A margin counts as
    clear only when it is larger than the spread (standard deviation) over seeds of either
    core; a smaller positive margin is "within noise".
    """
    by_core = {row["core"]: row for row in rows}
    if "fast_weights" not in by_core or len(by_core) < 2:
        return "Not enough cores to compare."
    names = {"irnn": "IRNN", "lstm": "LSTM"}
    fast = by_core["fast_weights"]
    others = [row for row in rows if row["core"] != "fast_weights"]
    quickest = min(others, key=lambda row: row["reach_mean"])
    highest = max(others, key=lambda row: row["auc_mean"])
    reach = _compare(fast["reach_mean"], quickest["reach_mean"],
                     max(fast["reach_std"], quickest["reach_std"]), higher_is_better=False)
    area = _compare(fast["auc_mean"], highest["auc_mean"],
                    max(fast["auc_std"], highest["auc_std"]), higher_is_better=True)
    outcomes = (reach, area)
    favour = sum(o in ("clear", "within noise") for o in outcomes)
    against = outcomes.count("against")
    if outcomes == ("clear", "clear"):
        head = "Yes."
    elif "clear" in outcomes and not against:
        head = "Yes, but not by a clear margin on every measure."
    elif favour and not against:
        head = "Not clearly: fast weights are ahead, but within the spread over seeds."
    elif not favour:
        head = "No."
    else:
        head = "Partly: the two measures disagree."
    threshold = f"{fast['threshold']:.0%}"
    if all(e is None for row in rows for e in row["episodes_to_threshold"]):
        reach_text = f"No run reached a training catch rate of {threshold} within its budget."
    else:
        reach_text = (
            f"Episodes until the training catch rate first reached {threshold} (a run that "
            f"never did counts as its whole budget): {fast['reach_mean']:,.0f} ± "
            f"{fast['reach_std']:,.0f} for fast weights against {quickest['reach_mean']:,.0f} ± "
            f"{quickest['reach_std']:,.0f} for the {names[quickest['core']]}, the quicker "
            f"control ({reach}).")
    return (
        f"{head} {reach_text} Mean training catch rate "
        f"over the run: {fast['auc_mean']:.3f} ± {fast['auc_std']:.3f} against "
        f"{highest['auc_mean']:.3f} ± {highest['auc_std']:.3f} for the "
        f"{names[highest['core']]} ({area}). (Mean ± standard deviation over seeds.)")


def plot_learning_curves(records: Sequence[dict], metric: str = "catch_rate",
                         window: int = 4, ax=None):
    """Learning curves per core: mean over seeds (line) and min-max over seeds (band).

    Args:
        records: run records from :func:`train` / :func:`load_records`.
        metric: "catch_rate" or "mean_return".
        window: points of trailing moving average applied to each seed before aggregating.
    Returns:
        the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    from fwbook.chapters.plots import MODEL_COLORS, MODEL_LABELS, use_house_style

    use_house_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.8))
    for core in CORES:
        group = [r for r in records if r["config"]["core"] == core]
        if not group:
            continue
        episodes = np.asarray(group[0]["curves"]["episodes"])
        curves = np.stack([_smooth(np.asarray(r["curves"][metric]), window) for r in group])
        mean = curves.mean(0)
        color = MODEL_COLORS[core]
        ax.plot(episodes, mean, color=color, lw=2,
                label=f"{MODEL_LABELS[core]} ({len(group)} seeds)")
        ax.fill_between(episodes, curves.min(0), curves.max(0), color=color, alpha=0.2, lw=0)
    config = records[0]["config"]
    ax.set_xlabel("training episodes")
    ax.set_ylabel("catch rate" if metric == "catch_rate" else "mean return")
    if metric == "catch_rate":
        ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    ax.set_title(f"Catch {config['size']}x{config['size']}, ball visible for "
                 f"{config['visible_steps']} frames")
    ax.legend(loc="best", frameon=True)
    return ax


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Train the Catch agents of a profile.")
    parser.add_argument("profile", choices=PROFILES)
    parser.add_argument("--out", default=str(RESULTS_DIR), help="directory for the records")
    parser.add_argument("--cores", nargs="+", default=list(CORES), choices=CORES)
    parser.add_argument("--seeds", nargs="+", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    run_profile(args.profile, args.cores, args.seeds, args.device, args.out, args.workers)
    print(f"all runs finished in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
