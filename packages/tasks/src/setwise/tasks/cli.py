"""The `setwise` command."""

import sys


def main(argv=None):
    print("setwise: no commands yet", file=sys.stderr)
    return 2
