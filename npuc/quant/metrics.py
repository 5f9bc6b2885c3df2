"""Error metrics of a quantized result against its float reference, shared by every tool."""

from __future__ import annotations

import numpy as np


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of `test` against `reference`, in dB
    (inf when they are equal, -inf when the reference is all zero and the test is not)."""
    ref = np.asarray(reference, dtype=np.float64)
    err = ref - np.asarray(test, dtype=np.float64)
    noise = float(np.sum(err * err))
    signal = float(np.sum(ref * ref))
    if noise == 0.0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")


def top1_agreement(reference: np.ndarray, test: np.ndarray) -> float:
    """Fraction of samples (axis 0) whose argmax over the remaining axes agrees."""
    n = len(reference)
    a = np.argmax(np.asarray(reference).reshape(n, -1), axis=1)
    b = np.argmax(np.asarray(test).reshape(n, -1), axis=1)
    return float(np.mean(a == b))


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of samples whose argmax over the output equals its integer label."""
    labels = np.asarray(labels).ravel()
    pred = np.argmax(np.asarray(outputs).reshape(len(labels), -1), axis=1)
    return float(np.mean(pred == labels))
