"""The book's ``common/functions.py``: xpnet's own functions, under the book's module name.

Nothing is redefined here; ``from xpnet.common.functions import *`` hands a script what
the book's star import does, ``np`` included.
"""

from xpnet.functions import *  # noqa: F403
from xpnet.functions import __all__  # noqa: F401
