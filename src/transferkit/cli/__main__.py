"""`python -m transferkit.cli` (as torchrun launches it): the `transferkit` command line."""
from . import main

if __name__ == "__main__":
    main()
