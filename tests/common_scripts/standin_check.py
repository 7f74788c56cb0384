# ruff: noqa: NPY002  (the book's global generator, seeded alike for both devices)
"""Every xpnet.common net, layer and optimizer on the CPU and on ``cuda``, compared.

Run where ``import cupy`` is CuPy or the stand-in (PYTHONPATH=tests/standin). Trains each
net a few Trainer steps from the same seeds on both devices and prints one line per case:
"<case> <largest |cpu - cuda| over params, losses, accuracies>", then "device <kinds>".
"""
import numpy as np

from xpnet import backend
from xpnet.common.deep_convnet import DeepConvNet
from xpnet.common.multi_layer_net import MultiLayerNet
from xpnet.common.multi_layer_net_extend import MultiLayerNetExtend
from xpnet.common.simple_convnet import SimpleConvNet
from xpnet.common.trainer import Trainer
from xpnet.common.two_layer_net import TwoLayerNet
from xpnet.common.util import shuffle_dataset, smooth_curve

rng = np.random.default_rng(0)
flat = rng.random((40, 16)).astype(np.float32)
images = rng.random((40, 1, 8, 8)).astype(np.float32)
labels = rng.integers(0, 4, 40)
one_hot = np.eye(4)[labels]
CONV = {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 1}
CASES = {
    "two_layer_net/sgd": (lambda d: TwoLayerNet(16, 6, 4, device=d), flat, one_hot, "sgd"),
    "multi_layer_net/momentum": (
        lambda d: MultiLayerNet(16, [6, 5], 4, "sigmoid", "xavier", 0.1, device=d),
        flat, labels, "momentum"),
    "multi_layer_net_extend/nesterov": (
        lambda d: MultiLayerNetExtend(16, [6, 5], 4, weight_decay_lambda=0.01,
                                      use_dropout=True, dropout_ration=0.3,
                                      use_batchnorm=True, device=d),
        flat, labels, "nesterov"),
    "multi_layer_net_extend/adagrad": (
        lambda d: MultiLayerNetExtend(16, [6], 4, use_batchnorm=True, device=d),
        flat, one_hot, "adagrad"),
    "simple_convnet/rmsprop": (
        lambda d: SimpleConvNet((1, 8, 8), CONV, 5, 4, device=d), images, labels, "rmsprop"),
    "simple_convnet/adam": (
        lambda d: SimpleConvNet((1, 8, 8), CONV, 5, 4, device=d), images, one_hot, "adam"),
}
kinds = set()
for case, (make, x, t, optimizer) in CASES.items():
    seen = {}
    for device in ("cpu", "cuda"):
        np.random.seed(1)
        net = make(device)
        np.random.seed(2)
        trainer = Trainer(net, x, t, x, t, epochs=2, mini_batch_size=10, optimizer=optimizer,
                          verbose=False)
        trainer.train()
        kinds |= {type(v).__module__.split(".")[0] for v in net.params.values()}
        seen[device] = [backend.asnumpy(v) for v in net.params.values()] + [
            smooth_curve(trainer.train_loss_list), np.array(trainer.test_acc_list)]
    gap = max(float(np.max(np.abs(a - b))) for a, b in zip(*seen.values(), strict=True))
    print(case, gap)

# DeepConvNet: one gradient step's numbers on both devices (28x28 images, dropout seeded)
seen = {}
x, t = rng.random((2, 1, 28, 28)), np.array([3, 1])
for device in ("cpu", "cuda"):
    np.random.seed(3)
    net = DeepConvNet(device=device)
    np.random.seed(4)
    grads = net.gradient(x, t)
    seen[device] = [backend.asnumpy(g) for g in grads.values()] + [
        np.array(float(net.loss(x, t))), np.array(net.accuracy(x, t, batch_size=2))]
print("deep_convnet/gradient", max(float(np.max(np.abs(a - b)))
                                    for a, b in zip(*seen.values(), strict=True)))

# The gradient checks (fused where the device has the kernel): within 1e-9 of the CPU's
CHECKS = {
    "two_layer_net/numerical_gradient": lambda d: TwoLayerNet(16, 5, 4, 0.5, device=d),
    "multi_layer_net/numerical_gradient": lambda d: MultiLayerNet(
        16, [5, 4], 4, "sigmoid", "xavier", 0.1, device=d),
    "multi_layer_net_extend/numerical_gradient": lambda d: MultiLayerNetExtend(
        16, [5], 4, weight_decay_lambda=0.1, device=d),
}
for case, make in CHECKS.items():
    seen = {}
    for device in ("cpu", "cuda"):
        np.random.seed(6)
        # strided rows of arrays already on the device, as a slice of a dataset gives
        x = backend.to_device(flat.astype(np.float64), device)[:6:2]
        grads = make(device).numerical_gradient(x, backend.to_device(one_hot, device)[:6:2])
        kinds |= {type(g).__module__.split(".")[0] for g in grads.values()}
        seen[device] = [backend.asnumpy(g) for g in grads.values()]
    print(case, max(float(np.max(np.abs(a - b))) for a, b in zip(*seen.values(), strict=True)))

np.random.seed(5)
xs, ts = shuffle_dataset(backend.to_device(flat, "cuda"), backend.to_device(labels, "cuda"))
np.random.seed(5)
xh, th = shuffle_dataset(flat, labels)
print("util/shuffle_dataset", float(np.max(np.abs(backend.asnumpy(xs) - xh))) +
      float(np.max(np.abs(backend.asnumpy(ts) - th))))
print("device", " ".join(sorted(kinds)))
