"""Entry point of `printfabric`; the workstation client (issue #7) is not built yet."""

import sys


def main() -> int:
    print(
        "printfabric: the workstation client (issue #7) is not built yet in this version",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
