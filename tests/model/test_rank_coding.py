"""Rank coding: first-spike rule, loss, and the compacting forward against a full-length reference."""

import math

import pytest
import torch

from firstspike.model.classifier import SequenceClassifier
from firstspike.model.rank_coding import first_spike, forward_until_spike, output_entropy, rc_loss

MASK = torch.tensor([True, True, False])  # two firing classes, one filler


def test_first_spike_hand_made():
    probs = torch.tensor([
        [[0.2, 0.2, 0.6], [0.5, 0.1, 0.4], [0.1, 0.95, 0.0], [0.99, 0.0, 0.01]],  # spikes at 2
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],  # filler only: never
        [[0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8], [0.97, 0.0, 0.03]],  # would spike at 3 but length 3
        [[0.9, 0.05, 0.05], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]],  # spikes at 0 exactly at θ
    ])
    t, spiked = first_spike(probs, MASK, 0.9, lengths=torch.tensor([4, 4, 3, 4]))
    assert t.tolist() == [2, 3, 2, 0]
    assert spiked.tolist() == [True, False, False, True]
    t, spiked = first_spike(probs, MASK, math.inf)
    assert t.tolist() == [3, 3, 3, 3] and not spiked.any()
    with pytest.raises(ValueError, match="selects no class"):
        first_spike(probs, torch.zeros(3, dtype=torch.bool), 0.9)


def test_rc_loss_entropy_reward():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    targets = torch.tensor([0, 1])
    ce = torch.nn.functional.cross_entropy(logits, targets)
    torch.testing.assert_close(rc_loss(logits, targets, 0.0), ce)
    ent = output_entropy(logits).mean()
    torch.testing.assert_close(rc_loss(logits, targets, 0.5), ce - 0.5 * ent)
    # a negative β penalises entropy: it rewards confident outputs at t* (earlier spikes)
    torch.testing.assert_close(rc_loss(logits, targets, -0.2), ce + 0.2 * ent)
    assert output_entropy(torch.zeros(1, 3))[0].item() == pytest.approx(math.log(3))
    # sigmoid head: entropy of a 0-logit Bernoulli is log 2 per class
    assert output_entropy(torch.zeros(1, 3), "sigmoid")[0].item() == pytest.approx(3 * math.log(2))


def _reference(clf, feats, lengths, theta):
    logits, _ = clf(feats)
    t, spiked = first_spike(torch.softmax(logits, -1), MASK, theta, lengths)
    return logits[torch.arange(len(t)), t], t, spiked


def _setup(seed=0):
    torch.manual_seed(seed)
    clf = SequenceClassifier(6, 16, 2, 3, chrono_t_max=20)
    with torch.no_grad():  # a strong bias toward class 0 so that some sequences spike early
        clf.head.bias.copy_(torch.tensor([1.5, 0.0, 0.0]))
    feats = torch.randn(12, 40, 6)
    lengths = torch.randint(10, 41, (12,))
    return clf, feats, lengths


@pytest.mark.parametrize("chunk", [1, 5, 8, 16])
def test_compacting_forward_matches_reference(chunk):
    clf, feats, lengths = _setup()
    with torch.no_grad():
        _, t_full, _ = _reference(clf, feats, lengths, 0.0)
        probs = torch.softmax(clf(feats)[0], -1)[..., :2].amax(-1)
    theta = float(probs.median())  # about half the steps cross: a mix of early, late and no spikes
    ref_logits, ref_t, ref_spiked = _reference(clf, feats, lengths, theta)
    assert 0 < ref_spiked.sum() < len(ref_spiked)
    targets = torch.randint(0, 3, (12,))
    ref_grads = torch.autograd.grad(rc_loss(ref_logits, targets, 0.1), list(clf.parameters()))

    res = forward_until_spike(clf, feats, lengths, MASK, theta, chunk=chunk)
    assert torch.equal(res.t_star, ref_t) and torch.equal(res.spiked, ref_spiked)
    torch.testing.assert_close(res.logits_at_t, ref_logits, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(rc_loss(res.logits_at_t, targets, 0.1), list(clf.parameters()))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
    # compaction: far fewer frames than a full-length forward, never fewer than the steps up to t*
    assert int((ref_t + 1).sum()) <= res.frames_computed < int(lengths.sum())


@pytest.mark.parametrize("chunk", [1, 5, 8, 16])
def test_step_averaged_entropy_matches_reference(chunk):
    """`mean_entropy` is the entropy averaged over steps 0..t*, however the chunks fall, with its gradient."""
    clf, feats, lengths = _setup(3)
    with torch.no_grad():
        probs = torch.softmax(clf(feats)[0], -1)[..., :2].amax(-1)
    theta = float(probs.median())
    ref_logits, ref_t, ref_spiked = _reference(clf, feats, lengths, theta)
    assert 0 < ref_spiked.sum() < len(ref_spiked)
    all_logits, _ = clf(feats)
    upto = torch.arange(feats.shape[1])[None, :] <= ref_t[:, None]
    ref_mean = (output_entropy(all_logits) * upto).sum(1) / (ref_t + 1)
    targets = torch.randint(0, 3, (12,))
    ref_grads = torch.autograd.grad(rc_loss(ref_logits, targets, 0.3, entropy=ref_mean), list(clf.parameters()))

    res = forward_until_spike(clf, feats, lengths, MASK, theta, chunk=chunk, step_entropy=True)
    torch.testing.assert_close(res.mean_entropy, ref_mean, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(rc_loss(res.logits_at_t, targets, 0.3, entropy=res.mean_entropy),
                                list(clf.parameters()))
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
    assert forward_until_spike(clf, feats, lengths, MASK, theta, chunk=chunk).mean_entropy is None


def test_eos_forward_runs_each_sequence_to_its_end():
    clf, feats, lengths = _setup(1)
    res = forward_until_spike(clf, feats, lengths, MASK, math.inf, chunk=8)
    assert torch.equal(res.t_star, lengths - 1) and not res.spiked.any()
    ref_logits, _, _ = _reference(clf, feats, lengths, math.inf)
    torch.testing.assert_close(res.logits_at_t, ref_logits, atol=1e-5, rtol=1e-5)
    # sequences leave the batch at their own end: at most one chunk of padding each
    assert int(lengths.sum()) <= res.frames_computed < int(lengths.sum()) + 8 * len(lengths)


def test_rc_computes_fewer_frames_than_eos():
    clf, feats, lengths = _setup(2)
    rc = forward_until_spike(clf, feats, lengths, MASK, 0.3, chunk=4)
    eos = forward_until_spike(clf, feats, lengths, MASK, math.inf, chunk=4)
    assert rc.spiked.any()
    assert rc.frames_computed < eos.frames_computed


def test_forward_until_spike_rejects_bad_lengths():
    clf, feats, _ = _setup()
    with pytest.raises(ValueError, match="lengths"):
        forward_until_spike(clf, feats, torch.zeros(12, dtype=torch.long), MASK, 0.9)


def test_dropout_acts_in_training_only():
    clf, feats, lengths = _setup(3)
    clf.eval()
    plain = forward_until_spike(clf, feats, lengths, MASK, 0.9, chunk=8)
    dropped = forward_until_spike(clf, feats, lengths, MASK, 0.9, chunk=8, dropout=0.5)
    torch.testing.assert_close(dropped.logits_at_t, plain.logits_at_t, atol=0, rtol=0)
    assert torch.equal(dropped.t_star, plain.t_star)
    clf.train()
    torch.manual_seed(0)
    noisy = forward_until_spike(clf, feats, lengths, MASK, math.inf, chunk=8, dropout=0.5)
    eos = forward_until_spike(clf, feats, lengths, MASK, math.inf, chunk=8)
    assert not torch.allclose(noisy.logits_at_t, eos.logits_at_t)
    noisy.logits_at_t.sum().backward()  # the dropped outputs still carry gradients to the LSTM
    assert clf.lstm.weight_hh_l0.grad is not None
    with pytest.raises(ValueError, match="dropout"):
        forward_until_spike(clf, feats, lengths, MASK, 0.9, dropout=1.0)
