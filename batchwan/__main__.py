"""``python -m batchwan``."""

from batchwan.cli import main

main()
