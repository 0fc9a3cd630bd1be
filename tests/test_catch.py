"""The rules of partially observable Catch, and the lockstep vector version against the single game."""

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from fwbook.chapters.ch08_agents import plot_episode
from fwbook.rl.catch import CatchEnv, VectorCatch, play_episode_frames

LEFT, STAY, RIGHT = 0, 1, 2


def test_gymnasium_check_env_passes():
    check_env(CatchEnv(), skip_render_check=True)
    check_env(CatchEnv(size=5, visible_steps=1, render_mode="rgb_array"))


def test_ball_visible_only_in_first_frames():
    env = CatchEnv(size=8, visible_steps=3)
    obs, info = env.reset(seed=0, options={"ball_column": 2})
    frames = [obs]
    for _ in range(env.episode_length):
        obs, *_ = env.step(STAY)
        frames.append(obs)
    assert len(frames) == 8
    for t, frame in enumerate(frames):
        ball_pixels = frame[:-1].sum()  # everything above the paddle row
        assert ball_pixels == (1 if t < 3 else 0), t
        if t < 3:
            assert frame[t, 2] == 1  # the ball is in row t, column 2
        assert frame[-1].sum() == 1  # the paddle is always shown


def _play(env, ball_column, actions):
    env.reset(options={"ball_column": ball_column})
    rewards, ends = [], []
    for a in actions:
        _, reward, terminated, truncated, _ = env.step(a)
        rewards.append(reward)
        ends.append(terminated)
        assert truncated is False
    return rewards, ends


def test_reward_catch_and_miss_and_episode_end():
    env = CatchEnv(size=6, visible_steps=2)  # paddle starts in column 3, 5 steps
    rewards, ends = _play(env, 1, [LEFT, LEFT, STAY, STAY, STAY])
    assert rewards == [0, 0, 0, 0, 1.0] and ends == [False] * 4 + [True]
    rewards, ends = _play(env, 5, [LEFT, LEFT, STAY, STAY, STAY])
    assert rewards[-1] == -1.0 and sum(rewards[:-1]) == 0 and ends[-1]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(STAY)


def test_paddle_stops_at_walls():
    env = CatchEnv(size=4, visible_steps=1)
    rewards, _ = _play(env, 3, [RIGHT, RIGHT, RIGHT])  # from column 2: 3, then wall
    assert rewards[-1] == 1.0


def test_same_seed_same_episode():
    def columns(seed):
        env = CatchEnv()
        return [env.reset(seed=seed + i)[1]["ball_column"] for i in range(20)]
    assert columns(3) == columns(3)
    assert columns(3) != columns(4)
    first = CatchEnv(); second = CatchEnv()
    a, _ = first.reset(seed=7); b, _ = second.reset(seed=7)
    np.testing.assert_array_equal(a, b)
    v1, v2 = VectorCatch(16, seed=5), VectorCatch(16, seed=5)
    torch.testing.assert_close(v1.reset(), v2.reset())


@pytest.mark.parametrize("action", [3, -1, 1.0, "left", None, True])
def test_bad_action_names_allowed_actions(action):
    env = CatchEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be one of 0 \(left\), 1 \(stay\), "
                                         r"2 \(right\)"):
        env.step(action)


def test_numpy_and_tensor_actions_accepted():
    env = CatchEnv(size=6, visible_steps=2)
    _, info = env.reset(seed=0)
    start = info["paddle_column"]
    _, _, _, _, info = env.step(np.int64(LEFT))
    assert info["paddle_column"] == start - 1  # a numpy integer acts as the same int
    _, _, _, _, info = env.step(torch.tensor(RIGHT))
    assert info["paddle_column"] == start  # so does a 0-d integer tensor
    _, _, _, _, info = env.step(np.array(RIGHT))
    assert info["paddle_column"] == start + 1 and info["frame"] == 3


@pytest.mark.parametrize("size, visible", [(2, 1), (10, 11), (10, -1), (3.0, 1), (10, 1.5)])
def test_bad_sizes_rejected(size, visible):
    with pytest.raises(ValueError, match="size|visible_steps"):
        CatchEnv(size, visible)
    with pytest.raises(ValueError, match="size|visible_steps"):
        VectorCatch(4, size, visible)


def test_vector_bad_actions_rejected():
    env = VectorCatch(3, size=5, visible_steps=1)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"0 \(left\), 1 \(stay\), 2 \(right\)"):
        env.step(torch.tensor([0, 1, 3]))
    with pytest.raises(ValueError, match="actions"):
        env.step(torch.tensor([0, 1]))


def test_vector_matches_single_env():
    size, visible, batch = 7, 2, 12
    rng = np.random.default_rng(0)
    columns = torch.as_tensor(rng.integers(size, size=batch))
    actions = torch.as_tensor(rng.integers(3, size=(batch, size - 1)))
    vector = VectorCatch(batch, size, visible)
    vector_frames = [vector.reset(ball_columns=columns)]
    vector_rewards, dones = [], []
    for t in range(size - 1):
        obs, reward, done = vector.step(actions[:, t])
        vector_frames.append(obs)
        vector_rewards.append(reward)
        dones.append(done)
    assert dones == [False] * (size - 2) + [True]
    for b in range(batch):
        env = CatchEnv(size, visible)
        obs, _ = env.reset(options={"ball_column": int(columns[b])})
        np.testing.assert_array_equal(obs, vector_frames[0][b].numpy())
        for t in range(size - 1):
            obs, reward, terminated, _, _ = env.step(int(actions[b, t]))
            np.testing.assert_array_equal(obs, vector_frames[t + 1][b].numpy())
            assert reward == float(vector_rewards[t][b])
        assert terminated


def test_random_columns_cover_grid_and_vector_end():
    env = VectorCatch(500, size=5, visible_steps=1, seed=0)
    env.reset()
    assert set(env.ball_column.tolist()) == set(range(5))
    for _ in range(4):
        env.step(torch.ones(500, dtype=torch.long))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(torch.ones(500, dtype=torch.long))


def test_episode_figure_draws():
    observed, full, reward = play_episode_frames(6, 2, ball_column=0)
    assert observed.shape == full.shape == (6, 6, 6) and reward == 1.0
    fig = plot_episode(6, 2, ball_column=0)
    assert len(fig.axes) == 12
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_columns_out_of_reach():
    from fwbook.rl.catch import columns_out_of_reach
    assert columns_out_of_reach(12, 2) == [0, 1, 2, 3, 9, 10, 11]  # paddle starts in column 6
    assert columns_out_of_reach(5, 2) == []
