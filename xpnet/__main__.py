"""``python -m xpnet`` is the ``xpnet`` command."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while still importing: one line, as main() says it
    print("xpnet: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
