"""A partially observable game of Catch (Ba et al. 2016, Section 4.4).

A ball appears in a random column of the top row of an ``size x size`` grid and falls one row
per step. The agent moves a one-cell paddle along the bottom row: action 0 moves it left,
1 keeps it still, 2 moves it right (it stops at the walls). When the ball reaches the bottom row
the episode ends with reward +1 if the paddle is under the ball (a catch) and -1 otherwise;
every other step gives 0. An episode therefore always lasts ``size - 1`` steps.

The game is *partially observable*: the ball is drawn only in the first ``visible_steps``
frames (frame 0 is the one :meth:`CatchEnv.reset` returns, frame t the one returned by the
t-th :meth:`CatchEnv.step`). After that the observation shows the paddle alone, so an agent
that has to move further than it can while the ball is visible must remember where it was.

Two implementations with the same rules:

* :class:`CatchEnv`, a ``gymnasium.Env`` for one game (numpy; what ``check_env`` checks);
* :class:`VectorCatch`, many games at once as torch tensors. All episodes have the same
  length, so the games run in lockstep and an episode batch is one (B, T) block.

A test plays both with the same ball columns and actions and checks that they agree frame by
frame.
"""

from __future__ import annotations

from typing import Any, Optional

import gymnasium as gym
import numpy as np
import torch

ACTIONS = ("left", "stay", "right")  # action index -> meaning; paddle moves by index - 1
NUM_ACTIONS = len(ACTIONS)
DEFAULT_SIZE = 10  # rows = columns of the grid
DEFAULT_VISIBLE_STEPS = 3  # frames 0 .. visible_steps-1 show the ball
MIN_SIZE = 3  # smallest grid with a top row, a bottom row and a row in between
BALL, PADDLE = 1.0, 1.0  # pixel values; both are drawn as 1 on a 0 background
HIDDEN_BALL = 0.5  # figures only: where the unseen ball really is

_ALLOWED = ", ".join(f"{i} ({name})" for i, name in enumerate(ACTIONS))


def check_game_size(size: int, visible_steps: int) -> None:
    """Raise a ValueError naming the allowed range if ``size`` or ``visible_steps`` is bad."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE} (grid rows = columns), "
                         f"got {size!r}")
    if isinstance(visible_steps, bool) or not isinstance(visible_steps, (int, np.integer)) \
            or not 0 <= visible_steps <= size:
        raise ValueError(f"visible_steps must be an integer from 0 to size={size} (frames that "
                         f"show the ball), got {visible_steps!r}")


def _bad_action(action: Any) -> ValueError:
    return ValueError(f"action must be one of {_ALLOWED}; got {action!r}")


def check_action(action: Any) -> int:
    """Return ``action`` as a Python int, or raise a ValueError naming the allowed actions."""
    if isinstance(action, (bool, np.bool_)):
        raise _bad_action(action)
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, torch.Tensor) and action.numel() == 1 and not action.is_floating_point():
        action = action.item()
    if not isinstance(action, (int, np.integer)) or not 0 <= int(action) < NUM_ACTIONS:
        raise _bad_action(action)
    return int(action)


class CatchEnv(gym.Env):
    """One game of partially observable Catch.

    Args:
        size: rows = columns of the grid (>= 3). An episode lasts ``size - 1`` steps.
        visible_steps: number of frames (counting the reset frame) in which the ball is drawn.
        render_mode: None or ``"rgb_array"`` (the full state, hidden ball drawn grey).

    Observation: float32 array (size, size); 1 where the ball (while visible) or the paddle
    is, 0 elsewhere. Row 0 is the top, the paddle lives in row ``size - 1``.
    ``info`` holds ``ball_column``, ``paddle_column``, ``ball_visible`` and ``frame``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, size: int = DEFAULT_SIZE, visible_steps: int = DEFAULT_VISIBLE_STEPS,
                 render_mode: Optional[str] = None):
        super().__init__()
        check_game_size(size, visible_steps)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size = int(size)
        self.visible_steps = int(visible_steps)
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.size, self.size), np.float32)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self._ball_row = self._ball_column = self._paddle_column = self._frame = None

    @property
    def episode_length(self) -> int:
        """Steps per episode: the ball falls from row 0 to row size-1."""
        return self.size - 1

    def _observation(self) -> np.ndarray:
        frame = np.zeros((self.size, self.size), np.float32)
        if self._frame < self.visible_steps:
            frame[self._ball_row, self._ball_column] = BALL
        frame[self.size - 1, self._paddle_column] = PADDLE
        return frame

    def _info(self) -> dict:
        return {"ball_column": self._ball_column, "paddle_column": self._paddle_column,
                "ball_visible": self._frame < self.visible_steps, "frame": self._frame}

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Start a game. ``options={"ball_column": c}`` fixes the ball's column.

        Returns: (observation (size, size), info).
        """
        super().reset(seed=seed)
        column = None if options is None else options.get("ball_column")
        if column is None:
            column = int(self.np_random.integers(self.size))
        elif isinstance(column, bool) or not isinstance(column, (int, np.integer)) \
                or not 0 <= column < self.size:
            raise ValueError(f"ball_column must be an integer from 0 to {self.size - 1}, "
                             f"got {column!r}")
        self._ball_row, self._ball_column = 0, int(column)
        self._paddle_column = self.size // 2  # the paddle starts in the middle
        self._frame = 0
        return self._observation(), self._info()

    def step(self, action):
        """Move the paddle, let the ball fall one row.

        Returns: (observation, reward, terminated, truncated, info); reward is +1 / -1 on the
        last step (catch / miss) and 0 before; truncated is always False.
        """
        action = check_action(action)
        if self._frame is None:
            raise RuntimeError("call reset() before step()")
        if self._ball_row == self.size - 1:
            raise RuntimeError("the episode has ended (the ball reached the bottom row); "
                               "call reset() to start a new one")
        # paddle moves by action - 1 in {-1, 0, +1}, stopping at the walls
        self._paddle_column = min(max(self._paddle_column + action - 1, 0), self.size - 1)
        self._ball_row += 1
        self._frame += 1
        terminated = self._ball_row == self.size - 1
        reward = 0.0
        if terminated:
            reward = 1.0 if self._paddle_column == self._ball_column else -1.0
        return self._observation(), reward, terminated, False, self._info()

    def render(self):
        """RGB image (size, size, 3) uint8 of the full state; a hidden ball is drawn grey."""
        if self.render_mode != "rgb_array" or self._frame is None:
            return None
        image = np.zeros((self.size, self.size, 3), np.uint8)
        shade = 255 if self._frame < self.visible_steps else 110
        image[self._ball_row, self._ball_column] = shade
        image[self.size - 1, self._paddle_column] = (80, 160, 255)
        return image


class VectorCatch:
    """``num_envs`` games of Catch played in lockstep on torch tensors.

    Same rules as :class:`CatchEnv`; every episode lasts ``size - 1`` steps, so all games start
    and end together and ``step`` returns one ``done`` flag for the batch.

    Args:
        num_envs: B, games per batch.
        size, visible_steps: as for :class:`CatchEnv`.
        device: where the observation tensors live.
        seed: seeds the private CPU generator that draws ball columns (same seed, same games).
    """

    def __init__(self, num_envs: int, size: int = DEFAULT_SIZE,
                 visible_steps: int = DEFAULT_VISIBLE_STEPS, device: str | torch.device = "cpu",
                 seed: Optional[int] = None):
        check_game_size(size, visible_steps)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
        self.num_envs, self.size, self.visible_steps = num_envs, int(size), int(visible_steps)
        self.device = torch.device(device)
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
        self.ball_column = self.paddle_column = None  # (B,) int64
        self.frame = None
        self._rows = torch.arange(num_envs, device=self.device)

    @property
    def episode_length(self) -> int:
        return self.size - 1

    @property
    def observation_shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    def _observation(self) -> torch.Tensor:
        frames = torch.zeros(self.num_envs, self.size, self.size, device=self.device)  # (B, S, S)
        if self.frame < self.visible_steps:
            frames[self._rows, self.frame, self.ball_column] = BALL  # ball row == frame
        frames[self._rows, self.size - 1, self.paddle_column] = PADDLE
        return frames

    def reset(self, seed: Optional[int] = None,
              ball_columns: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Start B games; returns observations (B, size, size).

        Args:
            seed: reseed the generator first.
            ball_columns: (B,) int columns to use instead of random ones.
        """
        if seed is not None:
            self.generator.manual_seed(seed)
        if ball_columns is None:
            ball_columns = torch.randint(self.size, (self.num_envs,), generator=self.generator)
        ball_columns = torch.as_tensor(ball_columns, dtype=torch.long)
        if ball_columns.shape != (self.num_envs,) or ball_columns.min() < 0 \
                or ball_columns.max() >= self.size:
            raise ValueError(f"ball_columns must be {self.num_envs} integers from 0 to "
                             f"{self.size - 1}, got {ball_columns!r}")
        self.ball_column = ball_columns.to(self.device)  # (B,)
        self.paddle_column = torch.full((self.num_envs,), self.size // 2, device=self.device)
        self.frame = 0
        return self._observation()

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Advance all games one step.

        Args:
            actions: (B,) integer tensor with values 0 (left), 1 (stay), 2 (right).
        Returns:
            observations (B, size, size), rewards (B,) float (+1/-1 on the last step, else 0),
            done (True on the last step of the episode).
        """
        if self.frame is None:
            raise RuntimeError("call reset() before step()")
        if self.frame >= self.episode_length:
            raise RuntimeError("the episodes have ended; call reset() to start new ones")
        actions = torch.as_tensor(actions)
        if actions.shape != (self.num_envs,) or actions.is_floating_point() \
                or actions.dtype == torch.bool or actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(f"actions must be a ({self.num_envs},) integer tensor with values "
                             f"{_ALLOWED}; got {actions!r}")
        moved = self.paddle_column + actions.to(self.device, torch.long) - 1  # (B,)
        self.paddle_column = moved.clamp(0, self.size - 1)
        self.frame += 1  # the ball's row equals the frame index
        done = self.frame == self.episode_length
        rewards = torch.zeros(self.num_envs, device=self.device)
        if done:
            caught = self.paddle_column == self.ball_column
            rewards = caught.float() * 2.0 - 1.0  # +1 catch, -1 miss
        return self._observation(), rewards, done


def columns_out_of_reach(size: int = DEFAULT_SIZE,
                         visible_steps: int = DEFAULT_VISIBLE_STEPS) -> list[int]:
    """Ball columns the paddle cannot reach while the ball is still visible.

    The agent acts once per visible frame, so it can move ``visible_steps`` cells before the
    ball vanishes; for a ball further than that from the paddle's start (the middle column)
    it must keep moving towards a target it can no longer see.
    """
    check_game_size(size, visible_steps)
    return [c for c in range(size) if abs(c - size // 2) > visible_steps]


def play_episode_frames(size: int = DEFAULT_SIZE, visible_steps: int = DEFAULT_VISIBLE_STEPS,
                        ball_column: int = 1, actions: Optional[list[int]] = None
                        ) -> tuple[np.ndarray, np.ndarray, float]:
    """Play one episode and return what the agent saw and the true state, for figures.

    Args:
        ball_column: where the ball falls.
        actions: ``size - 1`` actions; default: walk straight towards the ball, then stay.
    Returns:
        observations (size, size, size) = one frame per time step, full-state frames of the
        same shape (a ball the agent cannot see drawn as ``HIDDEN_BALL``), and the final
        reward.
    """
    env = CatchEnv(size, visible_steps)
    obs, info = env.reset(options={"ball_column": ball_column})
    observed, full = [obs], []
    reward = 0.0
    for t in range(env.episode_length + 1):
        truth = obs.copy()
        if t < size - 1 or truth[t, ball_column] == 0:  # do not paint over the paddle
            truth[t, ball_column] = BALL if t < visible_steps else HIDDEN_BALL
        full.append(truth)
        if t == env.episode_length:
            break
        if actions is None:
            gap = ball_column - info["paddle_column"]
            action = 1 + int(np.sign(gap))
        else:
            action = actions[t]
        obs, reward, _, _, info = env.step(action)
        observed.append(obs)
    return np.stack(observed), np.stack(full), reward
