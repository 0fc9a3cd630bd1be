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

Each run writes one record in the format of :mod:`fwbook.core.records` (``config_hash``,
provenance, ``wall_s``, ``started_at``), plus the Catch fields ``kind``, ``curves`` and
``final_greedy_catch_rate``. :func:`run_profile` is the runner for many runs; the associative
retrieval sweeps (:mod:`fwbook.experiments.sweep`) cannot run these, as they train a
``TrainConfig`` through :func:`fwbook.core.train.train`, but the runner shares their rule: a run
whose record exists with the same ``config_hash`` is never redone. From the command line::

    fwbook catch paper --out results/catch --workers 2
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fwbook.core.models import FastWeightsCore, seeded
from fwbook.core.records import (RECORD_SCHEMA, REPO_ROOT, config_hash, provenance, read_record,
                                 utc_now, write_record)
from fwbook.core.train import resolve_device
from fwbook.experiments.sweep import existing_record, record_path
from fwbook.rl.catch import NUM_ACTIONS, VectorCatch, check_game_size

CORES = ("fast_weights", "irnn", "lstm")
PROFILES = ("smoke", "quick", "paper")
RECORD_KIND = "catch_a2c"
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


def build_agent(config: AgentConfig, seed: int) -> CatchAgent:
    """The agent ``torch.manual_seed(seed)`` and a build give; the global random state is
    left as it was (:func:`fwbook.core.models.seeded`, as for the retrieval models)."""
    return seeded(seed, CatchAgent, config)


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


def evaluate(agent: CatchAgent, config: AgentConfig, seed: int, device: torch.device) -> float:
    """Catch rate of the greedy policy on ``config.eval_episodes`` fresh games."""
    env = VectorCatch(config.eval_episodes, config.size, config.visible_steps, device,
                      seed=10_000 + seed)  # games the training run never drew from
    with torch.no_grad():
        episode = play(agent, env, greedy=True)
    return float((episode["rewards"][:, -1] > 0).float().mean())


def run_name(config: AgentConfig, seed: int, profile: Optional[str] = None) -> str:
    """``paper_lstm_seed0``: the record's ``name`` and its file name without ``.json``."""
    prefix = f"{profile}_" if profile else ""
    return f"{prefix}{config.core}_seed{seed}"


def train(config: AgentConfig, seed: int = 0, device: str = "auto",
          out: Optional[str | Path] = None, quiet: bool = False,
          profile: Optional[str] = None) -> dict:
    """Train one agent with A2C and return its run record.

    Args:
        config: the run's :class:`AgentConfig`.
        seed: seeds the weights, the games and the action sampling (deterministic on CPU).
        device: "auto", "cpu", "cuda", ... (:func:`fwbook.core.train.resolve_device`).
        out: a JSON file, or a directory (the file is ``<run_name>.json``).
        quiet: no progress bar.
        profile: name stored in the record.
    Returns:
        the record: ``kind``, ``name``, ``profile``, ``seed``, ``config``, ``config_hash``,
        ``final_greedy_catch_rate``, the provenance of :func:`fwbook.core.records.provenance`,
        ``wall_s``, ``train_s``, ``started_at``, ``finished_at`` and ``curves`` (per point:
        ``step`` = update, ``episodes``, ``mean_return``, ``catch_rate``, ``entropy``).
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    origin, started_at = provenance(device), utc_now()  # the code that ran, and where
    agent = build_agent(config, seed).to(device)  # initial weights
    env = VectorCatch(config.batch, config.size, config.visible_steps, device, seed=seed)
    sampler = torch.Generator().manual_seed(seed + 1)  # action sampling
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.lr)
    curves = {"step": [], "episodes": [], "mean_return": [], "catch_rate": [], "entropy": []}
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
            curves["step"].append(update)
            curves["episodes"].append(update * config.batch)
            curves["mean_return"].append(mean_return)
            curves["catch_rate"].append((mean_return + 1) / 2)  # return is +1 or -1
            curves["entropy"].append(float(np.mean(window_entropy)))
            window_returns, window_entropy = [], []
            bar.set_postfix(catch=f"{curves['catch_rate'][-1]:.2f}")
    train_seconds = time.perf_counter() - start
    final = evaluate(agent, config, seed, device)
    config_dict = config.to_dict()
    record = {
        "kind": RECORD_KIND, "schema": RECORD_SCHEMA, "status": "completed",
        "name": run_name(config, seed, profile), "profile": profile, "seed": seed,
        "config": config_dict, "config_hash": config_hash(config_dict),
        "final_greedy_catch_rate": final, **origin,
        "wall_s": round(time.perf_counter() - start, 2), "train_s": round(train_seconds, 2),
        "started_at": started_at, "finished_at": utc_now(), "curves": curves,
    }
    if out is not None:
        out = Path(out)
        if out.suffix != ".json":
            out = record_path(out, record["name"])
        write_record(out, record)
    return record


def _train_job(profile: str, core: str, seed: int, device: str, out: Optional[str]) -> dict:
    torch.set_num_threads(1)
    return train(profile_config(profile, core), seed, device, out, quiet=True, profile=profile)


def _report(record: dict, reused: bool = False) -> None:
    done = "already recorded" if reused else f"in {record['wall_s']:.1f} s"
    print(f"{record['config']['core']:>12} seed {record['seed']}: greedy catch rate "
          f"{record['final_greedy_catch_rate']:.3f} {done}", flush=True)


def run_profile(profile: str = "quick", cores: Sequence[str] = CORES,
                seeds: Optional[Sequence[int]] = None, device: str = "cpu",
                out: Optional[str | Path] = None, workers: int = 1,
                quiet: bool = False) -> list[dict]:
    """Train every (core, seed) of a profile; returns the records in (core, seed) order.

    With ``out`` (a directory) a run whose record is there with the same ``config_hash`` is
    read back, not trained again; a record there with another configuration raises
    :class:`fwbook.experiments.sweep.SweepConfigMismatch` before anything is trained.
    ``workers > 1`` trains in that many single-threaded processes.
    """
    seeds = PROFILE_SEEDS[profile] if seeds is None else tuple(seeds)
    jobs = [(core, seed) for core in cores for seed in seeds]
    records = {}
    for core, seed in jobs:
        config = profile_config(profile, core)
        found = None if out is None else existing_record(out, run_name(config, seed, profile),
                                                         config)
        if found is not None:
            records[core, seed] = found
            if not quiet:
                _report(found, reused=True)
    todo = [job for job in jobs if job not in records]
    arguments = [(profile, core, seed, device, None if out is None else str(out))
                 for core, seed in todo]
    if workers <= 1 or len(todo) <= 1:
        threads = torch.get_num_threads()
        try:
            finished = (_train_job(*job) for job in arguments)
            for job, record in zip(todo, finished):
                records[job] = record
                if not quiet:
                    _report(record)
        finally:
            torch.set_num_threads(threads)
    else:
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
            for job, record in zip(todo, pool.map(_train_job, *zip(*arguments))):
                records[job] = record
                if not quiet:
                    _report(record)
    return [records[job] for job in jobs]


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
            path = record_path(directory, run_name(config, seed, profile))
            if not path.exists():
                raise FileNotFoundError(f"no record {path}; run `fwbook catch {profile} "
                                        f"--out {directory}` first")
            record = read_record(path)
            if record.get("config_hash") != config_hash(config.to_dict()):
                raise ValueError(f"{path} was made with a different configuration than the "
                                 f"{profile!r} profile now defines; rerun it")
            records.append(record)
    return records
