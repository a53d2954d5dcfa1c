"""`python -m transferkit`: the same command line as the `transferkit` script."""
from .cli import main

if __name__ == "__main__":
    main()
