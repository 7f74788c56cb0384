"""xpnet's one family of user errors: a mistake the user can fix from a one-line message.

Every class derives from ``UserError``, which the standalone ``xpnet.dataset`` package
defines (its own errors derive from it too, and it can import nothing of xpnet), so
``except UserError`` catches every user error of the project, and the command line
catches that class alone. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from .dataset.errors import UserError, first_line, one_line

__all__ = ["DeviceError", "DivergenceError", "FolderBusyError", "InputError", "ModelFileError",
           "RunFolderError", "UserError", "first_line", "one_line"]


class InputError(UserError, ValueError):
    """A public xpnet function got input it cannot use; the message says how to fix it."""


class DeviceError(UserError, RuntimeError):
    """The requested device cannot be used (bad name, no CuPy, or no usable GPU).

    ``reason`` says what is missing, without the advice that follows it in the message.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class DivergenceError(UserError, FloatingPointError):
    """The training loss became NaN or infinite (the settings, not the code, are wrong)."""


class ModelFileError(InputError):
    """A saved model file is missing, damaged, or not a TwoLayerNet."""


class RunFolderError(InputError):
    """A run folder that cannot be used as asked: missing, not a run's, damaged, taken."""


class FolderBusyError(RunFolderError):
    """Another live process holds the folder's lock (``xpnet.folder_lock``).

    ``folder``: the folder; ``pid``: the holder's process id, or None if it is unknown.
    """

    def __init__(self, message: str, *, folder: object = None, pid: int | None = None) -> None:
        super().__init__(message)
        self.folder = folder
        self.pid = pid
