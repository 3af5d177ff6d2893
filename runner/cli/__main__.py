"""`python -m turing_pg.cli` is `turing`."""

from turing_pg.cli import main

if __name__ == "__main__":
    main()
