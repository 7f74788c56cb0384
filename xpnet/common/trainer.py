"""The book's ``Trainer`` (chapters 6 to 8): mini-batch training with one of the book's
optimizers, printing as the book's does.

The star import hands on what the book's module does: ``Trainer``, the optimizers,
``np``, ``os`` and ``sys``.
"""

from __future__ import annotations

import os  # noqa: F401  (handed on by the star import, as the book's module does)
import sys  # noqa: F401
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .optimizer import *  # noqa: F403
from .optimizer import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from .optimizer import __all__ as _optimizer_names

__all__ = [*_optimizer_names, "os", "sys", "Trainer"]

OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
              "rmsprop": RMSprop, "adam": Adam}
DEFAULT_OPTIMIZER_PARAM = MappingProxyType({"lr": 0.01})


class Trainer:
    """Train ``network`` (anything with ``params``, ``gradient``, ``loss``, ``accuracy``).

    ``epochs`` of ``train_size / mini_batch_size`` steps, each on a batch drawn with
    replacement by NumPy's global generator. ``optimizer``: a name of ``OPTIMIZERS``
    (any case), built with ``optimizer_param``. At every epoch boundary (and at the first
    step) train and test accuracies are measured, on the first
    ``evaluate_sample_num_per_epoch`` samples if given. ``verbose`` prints the book's lines.
    Lists: ``train_loss_list``, ``train_acc_list``, ``test_acc_list``.
    """

    def __init__(self, network: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any,
                 epochs: int = 20, mini_batch_size: int = 100, optimizer: str = "SGD",
                 optimizer_param: Mapping[str, Any] = DEFAULT_OPTIMIZER_PARAM,
                 evaluate_sample_num_per_epoch: int | None = None,
                 verbose: bool = True) -> None:
        self.network = network
        self.verbose = verbose
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}: choose one of "
                             f"{', '.join(OPTIMIZERS)}")
        self.optimizer = OPTIMIZERS[optimizer.lower()](**optimizer_param)

        self.train_size = x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list: list[Any] = []
        self.train_acc_list: list[Any] = []
        self.test_acc_list: list[Any] = []

    def _say(self, line: str) -> None:
        if self.verbose:
            print(line)

    def train_step(self) -> None:
        """One update on a random batch; at an epoch boundary, the accuracies."""
        batch = np.random.choice(self.train_size, self.batch_size)  # noqa: NPY002
        x_batch, t_batch = self.x_train[batch], self.t_train[batch]
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        loss = self.network.loss(x_batch, t_batch)
        self.train_loss_list.append(loss)
        if self.verbose:  # float(): a GPU loss is read only when it is printed
            print(f"train loss:{float(loss)}")

        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
            n = self.evaluate_sample_num_per_epoch
            if n is not None:
                x_tr, t_tr, x_te, t_te = x_tr[:n], t_tr[:n], x_te[:n], t_te[:n]
            train_acc = self.network.accuracy(x_tr, t_tr)
            test_acc = self.network.accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            self._say(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, "
                      f"test acc:{test_acc} ===")
        self.current_iter += 1

    def train(self) -> None:
        """All ``max_iter`` steps, then the accuracy on the whole test set."""
        for _ in range(self.max_iter):
            self.train_step()
        test_acc = self.network.accuracy(self.x_test, self.t_test)
        self._say("=============== Final Test Accuracy ===============")
        self._say(f"test acc:{test_acc}")
