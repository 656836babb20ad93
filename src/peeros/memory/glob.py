"""Redis ``KEYS`` glob patterns, translated to regular expressions."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=256)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate a Redis glob (util.c ``stringmatchlen``) to a regex for fullmatch."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pattern[i]))
            i += 1
        elif c == "[":
            negate = i < n and pattern[i] == "^"
            i += negate
            parts: list[str] = []
            while i < n and pattern[i] != "]":  # an unterminated class ends at the end
                ch = pattern[i]
                if ch == "\\" and i + 1 < n:
                    parts.append(re.escape(pattern[i + 1]))
                    i += 2
                elif i + 2 < n and pattern[i + 1] == "-":
                    lo, hi = sorted((ch, pattern[i + 2]))  # Redis accepts reversed ranges
                    parts.append(f"{re.escape(lo)}-{re.escape(hi)}")
                    i += 3
                else:
                    parts.append(re.escape(ch))
                    i += 1
            i += 1
            if parts:
                out.append(f"[{'^' if negate else ''}{''.join(parts)}]")
            else:
                out.append("." if negate else "(?!)")
        else:
            out.append(re.escape(c))
    return re.compile("".join(out), re.DOTALL)
