"""Entry point of `printfabric-sync`; the Local Active Directory Sync tool (issue #8) is not built yet."""

import sys


def main() -> int:
    print(
        "printfabric-sync: the Local Active Directory Sync tool (issue #8) is not built yet in this version",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
