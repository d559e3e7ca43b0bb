"""``python -m repsep.cli ...`` (what torchrun launches)."""

from repsep.cli import main

main()
