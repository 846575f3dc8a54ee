"""Terminal output that never crashes on a character the console cannot show.

A Windows console or a redirected stream often encodes with a legacy code page (cp1252,
cp850): printing a name outside it ("Łukasz", "山田") raises UnicodeEncodeError in the middle of
a command. Invariant: after `tolerate_unencodable_output()`, stdout and stderr replace such
characters with "?" instead; streams that already use UTF-8 are unaffected.
"""

from __future__ import annotations

import io
import sys
from typing import TextIO


def tolerate_unencodable_output(*streams: TextIO) -> None:
    for stream in streams or (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            stream.reconfigure(errors="replace")
