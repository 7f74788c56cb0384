"""The same net and loop in PyTorch: the outside reference (CPU, and CUDA when present).

Same work as ``xpnet.trainer.train``: sigmoid hidden layer, softmax, the book's
cross-entropy with its 1e-7, loss taken in the forward pass, plain SGD, batches drawn
with replacement from indices made up front, full-set accuracy 17 times.
"""

from __future__ import annotations

import numpy as np
import torch


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class Net:
    def __init__(self, input_size, hidden_size, output_size, *, seed=0, dtype=torch.float32,
                 device="cpu"):
        rng = np.random.default_rng(seed)
        w1 = 0.01 * rng.standard_normal((input_size, hidden_size))
        w2 = 0.01 * rng.standard_normal((hidden_size, output_size))
        kw = {"dtype": dtype, "device": device}
        self.params = [
            torch.tensor(w1, **kw).requires_grad_(),
            torch.zeros(hidden_size, **kw).requires_grad_(),
            torch.tensor(w2, **kw).requires_grad_(),
            torch.zeros(output_size, **kw).requires_grad_(),
        ]

    def logits(self, x):
        w1, b1, w2, b2 = self.params
        return torch.sigmoid(x @ w1 + b1) @ w2 + b2

    def loss(self, x, t):
        y = torch.softmax(self.logits(x), dim=1)
        return -torch.log(y[torch.arange(x.shape[0], device=x.device), t] + 1e-7).mean()

    def step(self, x, t, lr):
        loss = self.loss(x, t)
        loss.backward()
        with torch.no_grad():
            for p in self.params:
                p -= lr * p.grad
                p.grad = None
        return loss.detach()

    @torch.no_grad()
    def accuracy(self, x, t):
        return float((self.logits(x).argmax(dim=1) == t).float().mean())


def train(x_train, t_train, x_test, t_test, *, iters_num=10000, batch_size=100,
          learning_rate=0.1, hidden_size=50, seed=0, dtype=torch.float32, device="cpu"):
    """Returns the test accuracy list; data moved to ``device`` once."""
    kw = {"dtype": dtype, "device": device}
    x_train, x_test = torch.tensor(x_train, **kw), torch.tensor(x_test, **kw)
    t_train = torch.tensor(t_train, dtype=torch.int64, device=device)
    t_test = torch.tensor(t_test, dtype=torch.int64, device=device)
    net = Net(x_train.shape[1], hidden_size, 10, seed=seed, dtype=dtype, device=device)
    train_size = x_train.shape[0]
    batches = torch.tensor(np.random.default_rng(seed).integers(
        0, train_size, size=(iters_num, batch_size)), device=device)
    per_epoch = max(train_size / batch_size, 1)
    losses = torch.empty(iters_num, dtype=torch.float64, device=device)
    test_acc = []
    for i in range(iters_num):
        idx = batches[i]
        losses[i] = net.step(x_train[idx], t_train[idx], learning_rate)
        if i % per_epoch == 0:
            net.accuracy(x_train, t_train)
            test_acc.append(net.accuracy(x_test, t_test))
    sync(device)
    return test_acc
