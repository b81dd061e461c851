"""My backprop for a two-layer tanh network. Check it with: backproplab check my_backprop.py"""

import numpy as np


def example(rng):
    """The parameters and the batch to check at, drawn from rng."""
    params = {
        "W1": rng.normal(0.0, 0.5, (4, 8)),
        "b1": rng.normal(0.0, 0.1, 8),
        "W2": rng.normal(0.0, 0.5, (8, 3)),
        "b2": rng.normal(0.0, 0.1, 3),
    }
    x = rng.standard_normal((16, 4))
    y = rng.standard_normal((16, 3))
    return params, x, y


def loss(params, x, y):
    """The loss, with backproplab's ops: params holds Tensors."""
    h = (x @ params["W1"] + params["b1"]).tanh()
    out = h @ params["W2"] + params["b2"]
    return ((out - y) ** 2).mean()


def grads(params, x, y):
    """The same loss's gradient, by hand in NumPy: params holds arrays."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    d_out = 2 * (out - y) / out.size  # the mean is over all 16 × 3 elements
    d_h = d_out @ params["W2"].T
    d_z1 = d_h * (1 - h**2)  # tanh'(z) = 1 - tanh(z)²
    return {
        "W1": x.T @ d_z1,
        "b1": d_z1.sum(axis=0),
        "W2": h.T @ d_out,
        "b2": d_out.sum(axis=0),
    }
