"""`python -m serving --model DIR [...]`: the same as `stylegan serve`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
