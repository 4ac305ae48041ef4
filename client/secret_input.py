"""Reading a password or PIN: from the environment, else asked on the terminal, else one line of
stdin; never from the command line, where `ps` would show it."""

from __future__ import annotations

import getpass
import os
import sys


def read_secret(env: str, prompt: str) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().rstrip("\n")
