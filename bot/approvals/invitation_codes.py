"""What counts as an Exalate invitation code, wherever one comes from: the answer to a
create call, or an approver's paste from the Exalate console.

An invitation code is base64 text. Anything else could break out of the code block it is
shown in, or mention and link where it is shown, so it is refused rather than escaped:
a code that is not one cannot be what the partner needs either.
"""

from __future__ import annotations

import re

__all__ = ["CODE_CHARACTERS", "LONGEST_CODE", "code_fault", "tidy_code"]

CODE_CHARACTERS = "letters, digits and + / = _ -"
"""The characters of a code, in words for the person who must fix one."""
LONGEST_CODE = 16_000
"""The most characters a code may have. Exalate's are far shorter; a longer one is shown
over several blocks all the same, so this only bounds what is stored and sent."""
_CODE = re.compile(r"[A-Za-z0-9+/=_-]+")


def tidy_code(code: str) -> str:
    """``code`` without whitespace: base64 ignores it, and a paste or a wrapped answer
    brings line breaks along."""
    return "".join(code.split())


def code_fault(code: str, *, longest: int = LONGEST_CODE) -> str | None:
    """Why ``code`` (tidied) is not an invitation code, in words that never quote it;
    None when it is one."""
    if not code:
        return "it is empty"
    if len(code) > longest:
        return f"it has {len(code):,} characters, more than the {longest:,} a code may have"
    if not _CODE.fullmatch(code):
        return f"it holds characters other than {CODE_CHARACTERS}"
    return None
