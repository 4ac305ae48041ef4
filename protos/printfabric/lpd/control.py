"""RFC 1179 control files: the job description an LPD client sends beside its data files.

`ControlFile` is the model both ends share: the client builds one with `ControlFile.for_job`
and sends `ControlFile.encode()`; a server turns the bytes it received back into one with
`ControlFile.parse`. Every field is sanitized on the way out: no control characters (a newline
would start a command of its own) and no more octets than RFC 1179 allows for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from printfabric.lpd.errors import LpdError

# RFC 1179 section 7: the longest value each line may carry, in octets. RFC 1179 gives no limit
# for L and N: L holds a user name (as P does); N gets BSD lpr's 131.
FIELD_LIMITS: dict[str, int] = {"H": 31, "P": 31, "J": 99, "C": 31, "L": 31, "T": 79, "N": 131}

# Any other line: cups-lpd reads lines into 256 octets, the command letter and LF included.
LINE_LIMIT = 253
# The data-file lines ("print this file as ..."), RFC 1179 sections 7.x: c CIF, d DVI,
# f formatted text, g plot, k Kerberized, l raw (leave control characters), n ditroff,
# o PostScript, p text through pr, r FORTRAN, t troff, v raster.
FILE_TYPES = frozenset("cdfgklnoprtv")
# One job refers to its data files as dfA..., dfB..., ... dfZ..., dfa..., dfz...
MAX_DATA_FILES = 52
# A job number has three digits on the wire.
JOB_NUMBERS = range(1000)

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")
_UNSAFE_HOST = re.compile(r"[^A-Za-z0-9.-]+")
# A data-file name as it appears after a data-file line: no whitespace, no path separator.
_FILE_NAME = re.compile(r"[!-~]{3,255}")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def clean(value: str, limit: int) -> str:
    """value without control characters (each run becomes one space), at most limit octets of
    UTF-8, cut on a character boundary."""
    text = _CONTROL_CHARS.sub(" ", value)
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", "ignore")


def file_host(host_name: str) -> str:
    """The host part of data and control file names: letters, digits, dots and dashes only."""
    host = _UNSAFE_HOST.sub("", host_name)[: FIELD_LIMITS["H"]]
    return host or "localhost"


def data_file_name(job_number: int, index: int, host_name: str) -> str:
    """'dfA123host' for the first data file of job 123 from host, 'dfB123host' for the second."""
    if not 0 <= index < MAX_DATA_FILES:
        raise LpdError(f"an LPD job has at most {MAX_DATA_FILES} data files", "BAD_JOB")
    return f"df{_LETTERS[index]}{job_number:03d}{file_host(host_name)}"


def control_file_name(job_number: int, host_name: str) -> str:
    """'cfA123host': the name the control file of job 123 is sent under."""
    return f"cfA{job_number:03d}{file_host(host_name)}"


@dataclass(frozen=True)
class PrintFile:
    """One data file of a job: its name on the wire, how to print it, how often, and the name
    of the file it came from (N line)."""

    name: str
    file_type: str = "l"
    copies: int = 1
    source_name: str = ""


@dataclass(frozen=True)
class ControlFile:
    """The lines of an RFC 1179 control file.

    host (H), user (P), job_name (J), job_class (C), banner_user (L: print a banner page for
    this user; None for no banner), title (T), the data files with their type line repeated
    once per copy, N before them, and a U (unlink) line for each. `extra` keeps lines this model
    does not name (I, M, W, S, fonts, ...) in order, as (letter, value).
    """

    host: str
    user: str
    files: tuple[PrintFile, ...] = ()
    job_name: str = ""
    job_class: str = ""
    banner_user: str | None = None
    title: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_job(
        cls,
        *,
        job_number: int,
        host: str,
        user: str,
        job_name: str = "",
        title: str = "",
        source_name: str = "",
        file_type: str = "l",
        copies: int = 1,
        banner: bool = False,
    ) -> ControlFile:
        """The control file of a job of one data file, every field cut to what RFC 1179 allows.

        Raises LpdError (BAD_JOB) for a job number outside 0-999, an unknown file type or
        fewer than one copy.
        """
        if job_number not in JOB_NUMBERS:
            raise LpdError(f"an LPD job number has three digits, not {job_number}", "BAD_JOB")
        if file_type not in FILE_TYPES:
            raise LpdError(f"{file_type!r} is not an RFC 1179 data file type", "BAD_JOB")
        if copies < 1:
            raise LpdError(f"a job needs at least one copy, not {copies}", "BAD_JOB")
        name = data_file_name(job_number, 0, host)
        user_name = clean(user, FIELD_LIMITS["P"])
        return cls(
            host=clean(host, FIELD_LIMITS["H"]),
            user=user_name,
            files=(PrintFile(name, file_type, copies, clean(source_name, FIELD_LIMITS["N"])),),
            job_name=clean(job_name, FIELD_LIMITS["J"]),
            banner_user=user_name if banner else None,
            title=clean(title, FIELD_LIMITS["T"]),
        )

    def lines(self) -> list[tuple[str, str]]:
        """(letter, value) in the order they are sent: H, P, J, C, L, T, extras, then for each
        data file N, one type line per copy and U."""
        out = [("H", self.host), ("P", self.user)]
        if self.job_name:
            out.append(("J", self.job_name))
        if self.job_class:
            out.append(("C", self.job_class))
        if self.banner_user is not None:
            out.append(("L", self.banner_user))
        if self.title:
            out.append(("T", self.title))
        out.extend(self.extra)
        for data in self.files:
            # cups-lpd takes a document's name from the N line read before its data-file line.
            if data.source_name:
                out.append(("N", data.source_name))
            out.extend([(data.file_type, data.name)] * data.copies)
            out.append(("U", data.name))
        return out

    def encode(self) -> bytes:
        """The control file as sent: one line per command, each ending in LF, values sanitized."""
        text = []
        for letter, value in self.lines():
            if len(letter) != 1 or not ("!" <= letter <= "~"):
                raise LpdError(f"{letter!r} is not a control file command", "BAD_JOB")
            text.append(f"{letter}{clean(value, FIELD_LIMITS.get(letter, LINE_LIMIT))}\n")
        return "".join(text).encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> ControlFile:
        """A control file as a server received it (UTF-8, or Latin-1 line by line if not).

        Repeated data-file lines for one file count as copies. An N line names the data file
        whose line follows it, or, when the previous data file has no name yet, that one (BSD
        lpr writes N after the data-file lines). Raises LpdError (BAD_CONTROL_FILE) for a line
        that is not LF-terminated, holds a NUL, or names a data file badly; H and P are required.
        """
        if data and not data.endswith(b"\n"):
            raise LpdError("the control file does not end with a newline", "BAD_CONTROL_FILE")
        values: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        files: list[PrintFile] = []
        pending_name: str | None = None
        for number, raw in enumerate(data.split(b"\n")[:-1], start=1):
            line = _decode_line(raw.removesuffix(b"\r"))
            if not line:
                continue
            if "\x00" in line:
                raise LpdError(f"line {number} of the control file holds a NUL", "BAD_CONTROL_FILE")
            letter, value = line[0], line[1:]
            if letter in FILE_TYPES:
                if not _FILE_NAME.fullmatch(value) or "/" in value:
                    raise LpdError(
                        f"line {number} of the control file names data file {value!r}",
                        "BAD_CONTROL_FILE",
                    )
                last = files[-1] if files else None
                if last is not None and last.name == value and last.file_type == letter:
                    files[-1] = replace(last, copies=last.copies + 1)
                else:
                    files.append(PrintFile(value, letter, 1, pending_name or ""))
                    pending_name = None
            elif letter == "N":
                last = files[-1] if files else None
                if last is not None and not last.source_name and pending_name is None:
                    files[-1] = replace(last, source_name=value)
                else:
                    pending_name = value
            elif letter == "U":
                continue  # the server removes every data file of a job anyway
            elif letter in "HPJCLT" and letter not in values:
                values[letter] = value
            else:
                extra.append((letter, value))
        if "H" not in values or "P" not in values:
            raise LpdError(
                "the control file has no H (host) or no P (user) line", "BAD_CONTROL_FILE"
            )
        return cls(
            host=values["H"],
            user=values["P"],
            files=tuple(files),
            job_name=values.get("J", ""),
            job_class=values.get("C", ""),
            banner_user=values.get("L"),
            title=values.get("T", ""),
            extra=tuple(extra),
        )


def _decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Older LPR clients send their host's 8-bit code page; Latin-1 never fails.
        return raw.decode("latin-1")
