"""The seed's three recipes for L1 regularization, done with l1reg.

Run: python examples/seed.py  (NumPy always; the PyTorch and Keras parts when those are installed)
"""

import importlib.util
import os

import numpy as np

import l1reg

# 1. NumPy, by hand: the classic function.
weights = [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([-1.0, 3.0])]
print("NumPy   l1_regularization:", l1reg.l1_regularization(weights, lambda_reg=0.01))

# 2. PyTorch: the penalty added to the loss, fused over every parameter.
if importlib.util.find_spec("torch"):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
    x, y = torch.randn(256, 10), torch.randint(0, 3, (256,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss = loss + l1reg.l1_regularization([m.weight for m in model if hasattr(m, "weight")])
    loss.backward()
    print("PyTorch loss with L1 penalty:", round(loss.item(), 4))

# 3. Keras: the same penalty as a kernel_regularizer (needs KERAS_BACKEND=torch or jax).
if importlib.util.find_spec("keras") and importlib.util.find_spec("l1reg.keras"):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    from l1reg.keras import L1

    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=L1(0.01)),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    print("Keras   kernel_regularizer penalty:", float(sum(model.losses)))
