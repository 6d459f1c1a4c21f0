"""Rank coding (first-spike decoding and training) for any per-step sequence classifier.

Model-agnostic API, shared by keyword-spotting training and the paper-reproduction toys:

- `first_spike(probs, firing_mask, theta, lengths)` → (t_star, spiked): the decision rule. A sequence
  spikes at the first step where its highest firing-class score reaches θ; one that never does is
  decided at its last valid step (spiked=False).
- `rc_loss(logits_at_t, targets, beta, head, entropy=None)` → cross-entropy at t* minus β × output
  entropy (a larger β rewards less confident early outputs, hence later spikes; a negative β rewards
  confidence instead, hence earlier spikes and more false fires). The
  entropy is taken at t*, or, when `entropy` is given, is that per-sequence value: the paper leaves open
  whether it is read at t* or averaged over the steps up to t*, so both are offered (`ENTROPY_READINGS`).
- `forward_until_spike(classifier, feats, lengths, firing_mask, theta, chunk, head, step_entropy)` →
  `SpikeResult`:
  runs a `SequenceClassifier` chunk by chunk and drops every sequence from the batch as soon as it has
  spiked or ended, so the forward compute really shrinks and backprop only reaches steps up to t* (plus
  at most the rest of t*'s chunk, which carries no gradient). θ = inf gives the end-of-sequence (EOS)
  forward: each sequence runs to its own end.

All tensors are batch-first; the firing mask is a bool tensor [K].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from firstspike.model.classifier import SequenceClassifier, scores

ENTROPY_READINGS = ("spike", "mean")  # entropy at t*, or its mean over steps 0..t*


def _check_mask(firing_mask: torch.Tensor, n_classes: int) -> torch.Tensor:
    mask = torch.as_tensor(firing_mask, dtype=torch.bool)
    if mask.shape != (n_classes,):
        raise ValueError(f"firing_mask must have shape [{n_classes}], got {tuple(mask.shape)}")
    if not mask.any():
        raise ValueError("firing_mask selects no class: nothing could ever spike")
    return mask


def first_spike(probs: torch.Tensor, firing_mask: torch.Tensor, theta: float,
                lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """probs [B, T, K] → (t_star [B] long, spiked [B] bool).

    t* is the first step t < length with max over firing classes of probs[b, t] ≥ θ, else length - 1.
    """
    if probs.dim() != 3:
        raise ValueError(f"probs must be [batch, time, classes], got shape {tuple(probs.shape)}")
    batch, steps, n_classes = probs.shape
    mask = _check_mask(firing_mask, n_classes).to(probs.device)
    if lengths is None:
        lengths = torch.full((batch,), steps, dtype=torch.long, device=probs.device)
    lengths = lengths.to(probs.device).long()
    if (lengths < 1).any() or (lengths > steps).any():
        raise ValueError(f"lengths must lie in [1, {steps}]")
    valid = torch.arange(steps, device=probs.device)[None, :] < lengths[:, None]
    crossed = (probs[..., mask].amax(dim=-1) >= theta) & valid
    spiked = crossed.any(dim=1)
    first = crossed.int().argmax(dim=1)  # first True (argmax returns the first maximum)
    return torch.where(spiked, first, lengths - 1), spiked


def _scores_for_check(logits: torch.Tensor, head: str) -> torch.Tensor:
    """`classifier.scores`, with the softmax written out (shift, exp, normalise).

    Over a [batch, chunk, classes] block torch's CPU softmax took 4-5x as long on this machine, and the
    runner checks θ after every chunk; for a single row torch's kernel is the faster one, so inference
    keeps it. The two agree to float rounding (~1e-7).
    """
    if head != "softmax":
        return scores(logits, head)
    shifted = (logits - logits.amax(dim=-1, keepdim=True)).exp()
    return shifted / shifted.sum(dim=-1, keepdim=True)


def output_entropy(logits: torch.Tensor, head: str = "softmax") -> torch.Tensor:
    """Entropy of the output distribution per row (sum of Bernoulli entropies for a sigmoid head)."""
    if head == "softmax":
        logp = F.log_softmax(logits, dim=-1)
        return -(logp.exp() * logp).sum(dim=-1)
    p = torch.sigmoid(logits)
    return -(p * F.logsigmoid(logits) + (1 - p) * F.logsigmoid(-logits)).sum(dim=-1)


def rc_loss(logits_at_t: torch.Tensor, targets: torch.Tensor, beta: float, head: str = "softmax",
            entropy: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of cross-entropy at t* minus β × entropy.

    The entropy is that of the outputs at t*, unless `entropy` [B] (e.g. `SpikeResult.mean_entropy`,
    differentiable) is given.
    """
    if head == "softmax":
        ce = F.cross_entropy(logits_at_t, targets)
    elif head == "sigmoid":
        one_hot = F.one_hot(targets, logits_at_t.shape[-1]).to(logits_at_t.dtype)
        ce = F.binary_cross_entropy_with_logits(logits_at_t, one_hot, reduction="none").sum(-1).mean()
    else:
        raise ValueError(f"unknown head {head!r}")
    if beta == 0:
        return ce
    if entropy is None:
        entropy = output_entropy(logits_at_t, head)
    return ce - beta * entropy.mean()


@dataclass
class SpikeResult:
    logits_at_t: torch.Tensor  # [B, K], differentiable
    t_star: torch.Tensor  # [B] long
    spiked: torch.Tensor  # [B] bool
    frames_computed: int  # frames actually pushed through the LSTM (all layers count once)
    mean_entropy: torch.Tensor | None = None  # [B], differentiable: output entropy averaged over steps 0..t*


def forward_until_spike(classifier: SequenceClassifier, feats: torch.Tensor, lengths: torch.Tensor,
                        firing_mask: torch.Tensor, theta: float, chunk: int = 8,
                        head: str = "softmax", step_entropy: bool = False, dropout: float = 0.0) -> SpikeResult:
    """Run `classifier` over feats [B, T, F] until each sequence spikes or ends, shrinking the batch.

    After every chunk of `chunk` steps, the sequences that have spiked or reached their length leave
    the active set (index_select on h, c and the batch index), so later chunks cost less. With
    `step_entropy`, the output entropy of every step up to t* is summed on the way (`mean_entropy`).
    `dropout` drops LSTM outputs before the head while the classifier is in training mode (the spike
    check then sees the same noisy outputs the loss does); it does nothing in eval mode.
    """
    if feats.dim() != 3:
        raise ValueError(f"feats must be [batch, time, features], got shape {tuple(feats.shape)}")
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    batch, steps, _ = feats.shape
    device = feats.device
    lengths = torch.as_tensor(lengths, device=device).long()
    if lengths.shape != (batch,) or (lengths < 1).any() or (lengths > steps).any():
        raise ValueError(f"lengths must be [batch] with values in [1, {steps}]")
    n_classes = classifier.head.out_features
    mask = _check_mask(firing_mask, n_classes).to(device)
    never = math.isinf(theta) and theta > 0

    active = torch.arange(batch, device=device)
    h, c = classifier.initial_state(batch, device)
    done_index, done_logits, done_t, done_spiked = [], [], [], []
    frames = 0
    start = 0
    entropy_sum = feats.new_zeros(batch) if step_entropy else None
    while active.numel() > 0:
        act_len = lengths[active]
        span = min(chunk, int(act_len.max()) - start)
        x = feats[:, start: start + span].index_select(0, active)  # slice first: copy only this chunk
        out, (h, c) = classifier.lstm(x, (h, c))
        if dropout and classifier.training:
            out = torch.nn.functional.dropout(out, dropout, training=True)
        logits = classifier.head(out)  # [A, span, K]
        frames += active.numel() * span

        steps_here = start + torch.arange(span, device=device)
        valid = steps_here[None, :] < act_len[:, None]
        if never:
            crossed = torch.zeros_like(valid)
        else:
            with torch.no_grad():
                crossed = (_scores_for_check(logits, head)[..., mask].amax(-1) >= theta) & valid
        spiked = crossed.any(dim=1)
        ended = act_len <= start + span
        finished = spiked | ended
        # the last step of this chunk each row is decided by: t* if it falls here, else the chunk's end
        last_t = torch.where(spiked, crossed.int().argmax(dim=1), (act_len - 1 - start).clamp(max=span - 1))
        if entropy_sum is not None:
            counted = valid & (torch.arange(span, device=device)[None, :] <= last_t[:, None])
            entropy_sum = entropy_sum.index_add(0, active, (output_entropy(logits, head) * counted).sum(dim=1))
        if finished.any():
            rows = finished.nonzero(as_tuple=True)[0]
            local_t = last_t[rows]
            done_logits.append(logits[rows, local_t])
            done_index.append(active[rows])
            done_t.append(local_t + start)
            done_spiked.append(spiked[rows])
            keep = (~finished).nonzero(as_tuple=True)[0]
            active = active[keep]
            h, c = h.index_select(1, keep), c.index_select(1, keep)
        start += span

    order = torch.cat(done_index)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(batch, device=device)
    t_star = torch.cat(done_t)[inverse]
    return SpikeResult(
        logits_at_t=torch.cat(done_logits)[inverse],
        t_star=t_star,
        spiked=torch.cat(done_spiked)[inverse],
        frames_computed=frames,
        mean_entropy=None if entropy_sum is None else entropy_sum / (t_star + 1).to(entropy_sum.dtype),
    )
