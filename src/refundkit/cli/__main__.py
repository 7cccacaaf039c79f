"""``python -m refundkit.cli``: the same as the ``refundkit`` console script."""

from . import main

main()
