"""The architecture controller: independent categorical logits per decision, REINFORCE.

As in TuNAS, the policy is one vector of logits per decision of the search
space, all starting at zero (uniform). An architecture is sampled choice by
choice; the update is REINFORCE with a moving-average baseline::

    loss = -(reward - baseline) * sum(log p(choice) for the decisions used)
    baseline <- m * baseline + (1 - m) * reward

Decisions that do not affect the sampled architecture (layer slots past its
depth) are left out of the log-probability, so they are neither rewarded nor
punished for what other decisions did.

The reward is TuNAS's absolute reward, ``quality + beta * |cost / target - 1|``
with beta < 0 (`absolute_reward`).
"""
import numpy as np
import tensorflow as tf


def absolute_reward(quality, cost, target, beta):
    """TuNAS's absolute reward: ``quality + beta * |cost / target - 1|``.

    Raises:
        ValueError: if beta >= 0 (the reward would favour missing the target) or
            target <= 0.
    """
    if beta >= 0:
        raise ValueError(f"beta must be < 0 (a penalty for missing the cost target), got {beta}.")
    if target <= 0:
        raise ValueError(f"The cost target must be > 0, got {target}.")
    return float(quality) + float(beta) * abs(float(cost) / float(target) - 1.0)


class Controller(tf.Module):
    """A policy over the decisions of a `SearchSpace`.

    The state (logits, Adam moments, baseline) lives in `tf.Variable`s so that a
    `tf.train.Checkpoint` saves and restores it; the arithmetic is numpy, since
    the policy is tiny and eager TF ops would cost more than the math.

    Args:
        space: the `SearchSpace` (or anything with `decisions()` and `used_mask()`).
        learning_rate: Adam learning rate of the logits.
        baseline_momentum: m of the moving-average baseline.
    """

    def __init__(self, space, learning_rate=0.05, baseline_momentum=0.95, name="controller"):
        super().__init__(name=name)
        if not 0.0 <= baseline_momentum < 1.0:
            raise ValueError(f"baseline_momentum must be in [0, 1), got {baseline_momentum}.")
        if learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
        self.space = space
        self.decisions = space.decisions()
        sizes = [len(d.choices) for d in self.decisions]
        self._splits = np.cumsum(sizes)[:-1]
        total = int(sum(sizes))
        self.logits = tf.Variable(tf.zeros([total]), name="logits")
        self.adam_m = tf.Variable(tf.zeros([total]), name="adam_m")
        self.adam_v = tf.Variable(tf.zeros([total]), name="adam_v")
        self.updates = tf.Variable(0, dtype=tf.int64, name="updates")
        self.baseline = tf.Variable(0.0, name="baseline")
        self.learning_rate = float(learning_rate)
        self.baseline_momentum = float(baseline_momentum)

    def _split(self, flat):
        return np.split(np.asarray(flat, np.float64), self._splits)

    def probabilities(self):
        """One numpy probability vector per decision."""
        out = []
        for logits in self._split(self.logits.numpy()):
            e = np.exp(logits - logits.max())
            out.append(e / e.sum())
        return out

    def sample(self, seed):
        """Draws choice indices; the same `seed` (ints) gives the same draw.

        Returns:
            tuple of ints, one per decision.
        """
        rng = np.random.default_rng(list(seed))
        return tuple(int(rng.choice(len(p), p=p)) for p in self.probabilities())

    def most_likely(self):
        """The argmax choice of every decision."""
        return tuple(int(np.argmax(p)) for p in self.probabilities())

    def log_probability(self, indices):
        """log p of an architecture: the sum over the decisions it uses (natural log)."""
        return float(sum(np.log(p[i]) for p, i, used in
                         zip(self.probabilities(), indices, self.space.used_mask(indices))
                         if used))

    def likely_architectures(self, count, seed, keep=None, draws=4000):
        """The controller's choice (`most_likely`), then the most likely other architectures.

        Distinct means different in a decision they use (layer slots past the
        depth do not count). The others come from `draws` seeded samples of
        the policy, ranked by `log_probability`, so they are the policy's top
        architectures as far as the draws reach them. A shallower architecture
        uses fewer decisions, so one of them can be more likely than the
        argmax of every decision.

        Args:
            count: at most this many architectures.
            seed: ints seeding the draws.
            keep: optional predicate on choice indices (e.g. a cost window); the
                controller's choice is always first, kept or not.
            draws: samples drawn from the policy.

        Returns:
            list of (indices, log probability): the controller's choice, then
            the others by descending probability; shorter than `count` when
            the draws hold fewer.
        """
        if count < 1:
            raise ValueError(f"likely_architectures: count must be >= 1, got {count}.")
        probabilities = self.probabilities()
        rng = np.random.default_rng(list(seed))

        def key(indices):
            return tuple(i if used else -1 for i, used in
                         zip(indices, self.space.used_mask(indices)))

        best = self.most_likely()
        seen = {key(best)}
        found = []
        columns = [rng.choice(len(p), size=draws, p=p) for p in probabilities]
        for row in zip(*columns):
            indices = tuple(int(i) for i in row)
            k = key(indices)
            if k not in seen:
                seen.add(k)
                found.append((indices, self.log_probability(indices)))
        found.sort(key=lambda item: -item[1])
        # `keep` only as far down the list as needed: a cost can be slow to measure.
        chosen = [(best, self.log_probability(best))]
        for indices, log_p in found:
            if len(chosen) == count:
                break
            if keep is None or keep(indices):
                chosen.append((indices, log_p))
        return chosen

    def entropy(self, indices=None):
        """Total entropy (nats) of the decisions (only those used by `indices`, if given)."""
        mask = self.space.used_mask(indices) if indices is not None else [True] * len(self.decisions)
        return float(sum(-np.sum(p * np.log(p + 1e-12))
                         for p, used in zip(self.probabilities(), mask) if used))

    def update(self, indices, reward):
        """One REINFORCE step (Adam ascent on advantage * log p) for a sample and its reward.

        Returns:
            dict with 'advantage' and 'baseline' (before the update).
        """
        reward = float(reward)
        if int(self.updates) == 0:
            self.baseline.assign(reward)
        baseline = float(self.baseline)
        advantage = reward - baseline
        mask = self.space.used_mask(indices)
        grads = []
        for p, index, used in zip(self.probabilities(), indices, mask):
            g = np.zeros_like(p)
            if used:
                g = -p
                g[index] += 1.0  # d log p[index] / d logits
            grads.append(advantage * g)
        grad = -np.concatenate(grads)  # minimise the negative objective
        step = int(self.updates) + 1
        beta1, beta2, eps = 0.9, 0.999, 1e-7
        m = beta1 * self.adam_m.numpy() + (1 - beta1) * grad
        v = beta2 * self.adam_v.numpy() + (1 - beta2) * grad * grad
        m_hat, v_hat = m / (1 - beta1 ** step), v / (1 - beta2 ** step)
        self.logits.assign(self.logits.numpy() - self.learning_rate * m_hat / (np.sqrt(v_hat) + eps))
        self.adam_m.assign(m)
        self.adam_v.assign(v)
        self.updates.assign(step)
        mom = self.baseline_momentum
        self.baseline.assign(mom * baseline + (1 - mom) * reward)
        return {"advantage": advantage, "baseline": baseline}
