"""The book's ``common/`` package (chapters 5 to 8) on NumPy or CuPy.

A reader's script changes only its imports: ``common.`` becomes ``xpnet.common.`` (and
``dataset.`` becomes ``xpnet.dataset.``). Module for module: ``functions``, ``gradient``,
``layers``, ``optimizer``, ``util``, ``multi_layer_net``, ``multi_layer_net_extend``,
``trainer``; and the chapter nets the book keeps beside its scripts: ``two_layer_net``
(chapter 5's, built from layers), ``simple_convnet`` (chapter 7), ``deep_convnet``
(chapter 8).

Nets draw their weights from NumPy's global generator (``np.random.seed`` gives the
book's start) and keep them, and every layer's buffers, on the configured device
(``XPNET_DEVICE``); the book's loops hand them NumPy batches, which the nets move there.
Parameter files are ``.npz``; ``convert_pickle`` turns the book's ``.pkl`` files into
``.npz`` once, admitting nothing but NumPy arrays.
"""

from .params_file import ParamsFileError, convert_pickle

__all__ = ["ParamsFileError", "convert_pickle"]
