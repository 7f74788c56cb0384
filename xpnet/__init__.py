"""xpnet: chapter 4 of *Deep Learning from Scratch* as a fast, device-switchable backend.

The book's names live where a reader looks for them: ``xpnet.functions`` (common/functions),
``xpnet.gradient`` (common/gradient), ``xpnet.two_layer_net.TwoLayerNet``, and
``xpnet.trainer.train`` for the loop of train_neuralnet.py. ``XPNET_DEVICE`` picks NumPy
(``cpu``) or CuPy (``cuda``); see ``xpnet.backend``.
"""

__version__ = "0.1.0"
