"""The control models of Table 1 in Ba et al. (2016): IRNN, LN-IRNN, LSTM and A-LSTM.

Each is a :class:`fwbook.core.classifier.RecurrentClassifier`: the same token input and
read-out as the fast-weights RNN, only the recurrence differs.

- IRNN: ReLU RNN with identity-initialised recurrence (Le, Jaitly, Hinton 2015),
  h(t+1) = f(W h(t) + C x(t) + b), W = I.
- LN-IRNN: h(t+1) = f(LN[W h(t) + C x(t) + b]), i.e. the fast-weights model with the memory
  and the inner loop removed (not in Table 1; the ablation that isolates the memory).
- LSTM: ``nn.LSTM`` with its default initialisation.
- A-LSTM: the Associative LSTM, the rest of this docstring and of this module.

The Associative LSTM: Danihelka, Wayne, Uria, Kalchbrenner, Graves (2016), *Associative Long Short-Term Memory*,
ICML 2016, arXiv:1602.03032. An LSTM whose cell is a complex-valued holographic reduced
representation (HRR, Plate 2003): the cell stores *key ⊛ value* products, where ⊛ is the
element-wise complex product, and it keeps several redundant copies of that memory, each
addressed through its own fixed permutation of the key, so that averaging the copies on read
cancels part of the interference between stored items.

Complex numbers are stored as real vectors: a complex vector of n units is a real tensor whose
last axis holds 2n numbers, the n real parts followed by the n imaginary parts
(``[Re | Im]``). Every function below uses that layout, so the model runs on any device and
dtype that plain real tensors do.

The memory primitives (this module's labels; Danihelka et al. number their equations
differently and their numbering is not reproduced here):

- (HRR-bound)   bound(z) = z / max(1, |z|)  per complex component: the modulus is capped at 1
- (HRR-bind)    r ⊛ x  = element-wise complex product (moduli multiply, phases add)
- (HRR-unbind)  r̄ ⊛ c  retrieves the value stored under key r when |r| = 1 (r̄: conjugate)
- (HRR-copies)  c_s = Σ_k (P_s r_k) ⊛ x_k,  x̃ = (1/N) Σ_s (P_s r̄) ⊛ c_s,  P_s a fixed
  permutation of the complex components for copy s = 1..N. One copy returns x plus noise of
  variance (K-1)·E|x|² for K stored pairs; N independently permuted copies divide that noise
  variance by about N.

The cell, one step from h(t-1), c_s(t-1) and x(t):

- (A1) [ĝ_f, ĝ_i, ĝ_o, r̂_i, r̂_o, û] = W_xh x(t) + W_hh h(t-1) + b
- (A2) g_f, g_i, g_o = σ(ĝ_f), σ(ĝ_i), σ(ĝ_o)  real, one per complex unit, applied to both
  the real and the imaginary part
- (A3) r_i = bound(r̂_i),  r_o = bound(r̂_o),  u = bound(û)  complex input key, output key, value
- (A4) r_i,s = P_s r_i,  r_o,s = P_s r_o  (one fixed permutation per copy)
- (A5) c_s(t) = g_f ⊙ c_s(t-1) + r_i,s ⊛ (g_i ⊙ u)
- (A6) h(t) = g_o ⊙ bound( (1/N) Σ_s r_o,s ⊛ c_s(t) )

In (A6) the output key is learned, so it needs no explicit conjugation: the network can learn
r_o = r̄_i. This follows Danihelka et al.; :func:`unbind` (with the conjugate) is the textbook
HRR read used to test the memory on its own.

How R maps to sizes (the convention of this project). Table 1 compares models by R, the
number of hidden units. Here ``config.hidden`` = R = H is the number of *real* hidden units:
h(t) is a real vector of H = 2n numbers holding n = H/2 complex units, so the shared read-out
sees H features exactly as for the other models. H must be even (R = 20, 50, 100 are).
Each of the N copies of the cell c_s holds n complex units (H real numbers).
Pre-activations per step: 3 gates × n + (r_i, r_o, u) × 2n = 4.5 H (an LSTM has 4 H), so at
the same R the recurrence has 4.5 H (I + H + 1) weights against the 4 H (I + H + 2) of
``nn.LSTM`` (which has two bias vectors): 10.6% (R = 20) to 11.7% (R = 100) more, with
I = 37 one-hot inputs. The totals add the shared read-out, H·100 + 100 + 100·37 + 37:

=====  =================  ===============  ==============  ============
R      A-LSTM recurrence  LSTM recurrence  A-LSTM total    LSTM total
=====  =================  ===============  ==============  ============
20     5,220              4,720            11,057          10,557
50     19,800             17,800           28,637          26,637
100    62,100             55,600           75,937          69,437
=====  =================  ===============  ==============  ============

The copies cost no parameters, only memory and compute: N × H cell numbers per sample.
(``tests/test_controls.py`` checks this table.)

Deviations and choices not fixed by either paper (say so wherever this model is reported):

- Ba et al. do not say (in the text we could check) how many copies their A-LSTM used, nor
  its initialisation. Here N = 4 copies by default; Danihelka et al. study several values of N.
- The permutations are drawn once from a CPU generator seeded by ``permutation_seed``
  (default 0), independent of the global torch seed, and saved in the ``state_dict`` as a
  buffer; they are never trained. All N copies use a random permutation (copy 1 included).
- Initialisation: input weights uniform in ±1/√H as the other models here; recurrent weights
  uniform in ±1/√H (the ``nn.LSTM`` default); biases 0. Initial h(0) = 0 and c_s(0) = 0.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from fwbook.core.classifier import RecurrentClassifier, check_tokens

DEFAULT_NUM_COPIES = 4  # N redundant copies of the cell (project choice; see module docstring)
DEFAULT_PERMUTATION_SEED = 0  # seed of the generator that draws the fixed permutations P_s


class IRNN(RecurrentClassifier):
    """ReLU RNN with identity-initialised recurrence (Le, Jaitly, Hinton 2015).

    With ``layer_norm=True`` it is the LN-IRNN: h(t+1) = f(LN[W h(t) + C x(t)]), i.e. the fast
    weights model with the memory and inner loop removed.
    """

    def __init__(self, config, layer_norm: bool = False):
        super().__init__(config)
        hidden = config.hidden
        self.add_input_weights(hidden)  # Cᵀ (I, H), b (H,)
        scale = 1.0 if config.recurrent_init is None else config.recurrent_init
        self.recurrent = nn.Parameter(scale * torch.eye(hidden))  # W (H, H)
        self.norm = nn.LayerNorm(hidden) if layer_norm else nn.Identity()

    def encode(self, tokens: torch.Tensor, record: bool = False) -> tuple[torch.Tensor, None]:
        """Hidden states (B, T, H) for tokens (B, T); nothing to record (None)."""
        drive = self.projected_input(tokens, self.input_weight, self.bias)  # (B, T, H)
        h = drive.new_zeros(drive.shape[0], drive.shape[2])  # (B, H)  h(0) = 0
        outputs = []
        for t in range(drive.shape[1]):
            h = F.relu(self.norm(h @ self.recurrent.T + drive[:, t]))  # h(t+1) = f(W h(t) + C x(t))
            outputs.append(h)
        return torch.stack(outputs, 1), None  # (B, T, H)


class LSTMClassifier(RecurrentClassifier):
    """``nn.LSTM`` over one-hot inputs (or the learned embedding), with the shared read-out."""

    def __init__(self, config):
        super().__init__(config)
        self.lstm = nn.LSTM(config.input_size, config.hidden, batch_first=True)

    def encode(self, tokens: torch.Tensor, record: bool = False) -> tuple[torch.Tensor, None]:
        """Hidden states (B, T, H) for tokens (B, T); nothing to record (None)."""
        if self.embedding is not None:
            inputs = self.embedding(tokens)  # (B, T, E)
        else:
            inputs = F.one_hot(tokens, self.config.vocab_size).to(self.lstm.weight_ih_l0.dtype)
        states, _ = self.lstm(inputs)  # (B, T, H)
        return states, None


# --------------------------------------------------------------------------------------------
# Complex holographic memory on real tensors laid out as [Re | Im]
# --------------------------------------------------------------------------------------------

def _split(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts (..., n) of a complex vector stored as (..., 2n)."""
    if z.shape[-1] % 2:
        raise ValueError(f"a complex vector needs an even last axis [Re | Im], got {z.shape[-1]}")
    return z.chunk(2, dim=-1)


def to_complex(z: torch.Tensor) -> torch.Tensor:
    """(..., 2n) real ``[Re | Im]`` -> (..., n) torch complex tensor (for readers and tests)."""
    real, imag = _split(z)
    return torch.complex(real, imag)


def from_complex(z: torch.Tensor) -> torch.Tensor:
    """(..., n) torch complex tensor -> (..., 2n) real ``[Re | Im]``."""
    return torch.cat([z.real, z.imag], dim=-1)


def bound(z: torch.Tensor) -> torch.Tensor:
    """(HRR-bound) z / max(1, |z|) per complex component: caps every modulus at 1.

    Args:
        z: (..., 2n) complex vector as ``[Re | Im]``.
    Returns:
        (..., 2n), same layout; components with |z| <= 1 are unchanged.
    """
    real, imag = _split(z)  # (..., n) each
    # max(1, |z|) computed as sqrt(max(1, |z|²)): same value, and no 0/0 gradient at z = 0
    modulus = torch.sqrt(torch.clamp(real * real + imag * imag, min=1.0))  # (..., n)
    return z / torch.cat([modulus, modulus], dim=-1)  # (..., 2n)


def bind(key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """(HRR-bind) key ⊛ value, the element-wise complex product; broadcasts like ``*``.

    Args:
        key: (..., 2n) complex as ``[Re | Im]``.
        value: (..., 2n) complex as ``[Re | Im]``.
    Returns:
        (..., 2n): (a + ib)(c + id) = (ac - bd) + i(ad + bc).
    """
    a, b = _split(key)  # (..., n)
    c, d = _split(value)  # (..., n)
    return torch.cat([a * c - b * d, a * d + b * c], dim=-1)  # (..., 2n)


def conjugate(z: torch.Tensor) -> torch.Tensor:
    """Complex conjugate of (..., 2n) ``[Re | Im]``: the imaginary half changes sign."""
    real, imag = _split(z)
    return torch.cat([real, -imag], dim=-1)


def unbind(key: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """(HRR-unbind) r̄ ⊛ c: the value stored under a unit-modulus ``key``, plus noise.

    Args:
        key: (..., 2n) complex key with |r_j| = 1 (then r̄ = r⁻¹).
        memory: (..., 2n) memory trace c = Σ_k r_k ⊛ x_k.
    Returns:
        (..., 2n) the retrieved value.
    """
    return bind(conjugate(key), memory)


def random_permutations(num_copies: int, units: int, seed: int = DEFAULT_PERMUTATION_SEED
                        ) -> torch.Tensor:
    """N fixed random permutations of n complex units, from a CPU generator seeded by ``seed``.

    Returns:
        (N, 2n) int64 indices into a ``[Re | Im]`` vector: row s permutes the real and the
        imaginary halves by the same permutation P_s, so it moves whole complex numbers.
    """
    if isinstance(num_copies, bool) or not isinstance(num_copies, int) or num_copies < 1:
        raise ValueError(f"num_copies must be a positive integer, got {num_copies!r}")
    generator = torch.Generator().manual_seed(int(seed))
    perms = torch.stack([torch.randperm(units, generator=generator)
                         for _ in range(num_copies)])  # (N, n)
    return torch.cat([perms, perms + units], dim=1)  # (N, 2n)


def permute_copies(z: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """(A4) P_s z for every copy s.

    Args:
        z: (..., 2n) complex as ``[Re | Im]``.
        permutations: (N, 2n) from :func:`random_permutations`.
    Returns:
        (..., N, 2n): entry [..., s, :] is P_s z.
    """
    return z[..., permutations]  # (..., N, 2n)


def store(keys: torch.Tensor, values: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """(HRR-copies) Write K key-value pairs into N redundant copies: c_s = Σ_k (P_s r_k) ⊛ x_k.

    Args:
        keys: (..., K, 2n) unit-modulus complex keys.
        values: (..., K, 2n) complex values.
        permutations: (N, 2n), one row per copy.
    Returns:
        (..., N, 2n) the N memory traces.
    """
    permuted = permute_copies(keys, permutations)  # (..., K, N, 2n)
    return bind(permuted, values.unsqueeze(-2)).sum(dim=-3)  # (..., N, 2n)


def recall(key: torch.Tensor, memory: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """(HRR-copies) Read the value under ``key``: x̃ = (1/N) Σ_s (P_s r̄) ⊛ c_s.

    Args:
        key: (..., 2n) unit-modulus complex key.
        memory: (..., N, 2n) traces from :func:`store`.
        permutations: (N, 2n), the same ones used to store.
    Returns:
        (..., 2n) the retrieved value: the stored one plus noise whose variance falls ~1/N.
    """
    permuted = permute_copies(key, permutations)  # (..., N, 2n)
    return unbind(permuted, memory).mean(dim=-2)  # (..., 2n)


# --------------------------------------------------------------------------------------------
# The Associative LSTM
# --------------------------------------------------------------------------------------------

class AssociativeLSTMCore(nn.Module):
    """The A-LSTM recurrence (A1)-(A6) on pre-projected inputs ``W_xh x(t) + b`` (B, T, 4.5H).

    Args:
        hidden: H real hidden units = n = H/2 complex units (H must be even).
        num_copies: N redundant copies of the cell.
        permutation_seed: seed of the fixed permutations P_s.
    """

    def __init__(self, hidden: int, num_copies: int = DEFAULT_NUM_COPIES,
                 permutation_seed: int = DEFAULT_PERMUTATION_SEED):
        super().__init__()
        if hidden % 2:
            raise ValueError(f"the A-LSTM needs an even number of hidden units H (H/2 complex "
                             f"units), got {hidden}")
        self.hidden = hidden
        self.units = hidden // 2  # n complex units
        self.num_copies = num_copies
        self.pre_size = 3 * self.units + 3 * hidden  # 4.5 H: 3 gates (n) + r_i, r_o, u (2n)
        self.recurrent = nn.Parameter(torch.empty(hidden, self.pre_size))  # W_hhᵀ (H, 4.5H)
        bound_ = 1.0 / hidden**0.5
        nn.init.uniform_(self.recurrent, -bound_, bound_)
        # P_s: fixed, seeded, saved with the model, never trained
        self.register_buffer("permutations",
                             random_permutations(num_copies, self.units, permutation_seed))

    def step(self, drive: torch.Tensor, h: torch.Tensor, cells: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step from h(t-1), c_s(t-1) and ``drive`` = W_xh x(t) + b to h(t), c_s(t).

        Args:
            drive: (B, 4.5H) input projection.
            h: (B, H) h(t-1), n complex units as ``[Re | Im]``.
            cells: (B, N, H) the N copies c_s(t-1).
        Returns:
            h(t) (B, H) and c_s(t) (B, N, H).
        """
        n = self.units
        # (A1) [ĝ_f, ĝ_i, ĝ_o, r̂_i, r̂_o, û] = W_xh x(t) + W_hh h(t-1) + b
        pre = drive + h @ self.recurrent  # (B, 4.5H)
        gates = torch.sigmoid(pre[:, : 3 * n])  # (B, 3n)  (A2) σ(ĝ_f), σ(ĝ_i), σ(ĝ_o)
        gates = torch.cat([gates.reshape(-1, 3, n)] * 2, dim=2)  # (B, 3, 2n) same gate on Re, Im
        forget, write, read = gates.unbind(1)  # (B, H) each: g_f, g_i, g_o
        keys_and_value = bound(pre[:, 3 * n:].reshape(-1, 3, self.hidden))  # (B, 3, H)  (A3)
        in_key, out_key, value = keys_and_value.unbind(1)  # (B, H) each: r_i, r_o, u
        in_keys = permute_copies(in_key, self.permutations)  # (B, N, H)  (A4) r_i,s = P_s r_i
        out_keys = permute_copies(out_key, self.permutations)  # (B, N, H)  (A4) r_o,s = P_s r_o
        # (A5) c_s(t) = g_f ⊙ c_s(t-1) + r_i,s ⊛ (g_i ⊙ u)
        written = bind(in_keys, (write * value).unsqueeze(1))  # (B, N, H)  r_i,s ⊛ (g_i ⊙ u)
        cells = forget.unsqueeze(1) * cells + written  # (B, N, H)
        # (A6) h(t) = g_o ⊙ bound((1/N) Σ_s r_o,s ⊛ c_s(t))
        h = read * bound(bind(out_keys, cells).mean(dim=1))  # (B, H)
        return h, cells

    def forward(self, drive: torch.Tensor) -> torch.Tensor:
        """Run a whole sequence.

        Args:
            drive: (B, T, 4.5H) input projections.
        Returns:
            hidden states h(1)..h(T), (B, T, H).
        """
        batch = drive.shape[0]
        h = drive.new_zeros(batch, self.hidden)  # (B, H)  h(0) = 0
        cells = drive.new_zeros(batch, self.num_copies, self.hidden)  # (B, N, H)  c_s(0) = 0
        outputs = []
        # unbind: one backward for all T steps (indexing drive[:, t] builds a zero (B, T, 4.5H)
        # gradient per step); 10% faster at R = 50
        for drive_t in drive.unbind(1):
            h, cells = self.step(drive_t, h, cells)
            outputs.append(h)
        return torch.stack(outputs, 1)  # (B, T, H)


class AssociativeLSTMClassifier(RecurrentClassifier):
    """Associative LSTM (Danihelka et al. 2016) with the shared read-out: Table 1's "A-LSTM".

    ``config.hidden`` = R = H real hidden units = H/2 complex units (H even); see the module
    docstring for the equations, the parameter count against ``nn.LSTM`` and the choices
    neither paper fixes.

    Args:
        config: a :class:`fwbook.core.models.ModelConfig` with ``model="alstm"``; only ``hidden``,
            ``input_embedding``, ``vocab_size``, ``num_classes`` and ``readout_hidden`` are
            used.
        num_copies: N redundant copies of the cell (default 4).
        permutation_seed: seed of the fixed key permutations (default 0).
    """

    def __init__(self, config, num_copies: int = DEFAULT_NUM_COPIES,
                 permutation_seed: int = DEFAULT_PERMUTATION_SEED):
        super().__init__(config)
        self.core = AssociativeLSTMCore(config.hidden, num_copies, permutation_seed)
        # W_xhᵀ (I, 4.5H): row k is W_xh x for the one-hot x of token k; b (4.5H)
        self.add_input_weights(self.core.pre_size)

    def encode(self, tokens: torch.Tensor, record: bool = False
               ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Hidden states (B, T, H) for tokens (B, T) int64; no memory weights (None)."""
        check_tokens(tokens)
        # (B, T, 4.5H)  W_xh x(t) + b, one-hot x (or the learned embedding e(t))
        drive = self.projected_input(tokens, self.input_weight, self.bias)
        return self.core(drive), None
