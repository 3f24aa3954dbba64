"""`python -m turnout`: the same as the `turnout` command."""

from turnout.cli import main

if __name__ == "__main__":
    main()
