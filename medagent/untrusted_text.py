"""Untrusted text (the record's, a user's) on its way to a model: the one quoting rule and the control-token guard.

- :func:`guard_record_text` is the quoting rule for a piece of record text, whatever field it comes from (a
  display, a code, the last segment of a system URL, a unit, a person's name, a route, a note): plain text
  comes back as it is; text that could pose as a chat turn, a role marker, a tool call or an instruction comes
  back as ``«...»`` record data, escaped. Matching sees the text as a reader would: NFKC-normalised, format
  characters (zero-width joiners and spaces, bidi marks) dropped, so ``SYSTEM：`` (a fullwidth colon) and
  ``SYS\\u200dTEM:`` are bracketed like ``SYSTEM:``. The tools' row renderers apply it to every part of every
  line (``medagent.tools.compact.join``).
- :func:`neutralize_control_tokens` is applied to every message before a chat template renders it (both
  backends build turns with ``medagent.models.base.chat_turns``), so a chat-template control token in any text
  (``<end_of_turn>``, ``<start_of_turn>``, ``<|im_start|>``, ``<unused94>`` ...) never becomes a control token id.
"""

from __future__ import annotations

import re
import unicodedata

RECORD_QUOTE = ("\u00ab", "\u00bb")  # « » delimit text quoted from the record
FREE_TEXT_WORDS = 16  # free text (a sentence or more) is quoted whatever it says

CONTROL_TOKEN = re.compile(
    r"<\s*/?\s*(?:start_of_turn|end_of_turn|start_of_image|end_of_image|image_soft_token|bos|eos|pad|unk|mask|s|"
    r"unused\d+|think|\|[^<>]{0,40}?\|)\s*>|\[/?INST\]|<<\s*/?\s*SYS\s*>>",
    re.IGNORECASE,
)
"""Chat-template control tokens (Gemma's, and the common ones of other templates), in any case and spacing."""
ROLE_MARKER = re.compile(r"\b(system|assistant|user|model|tool|developer|human|agent|ai assistant)\s*:", re.IGNORECASE)
INSTRUCTION_LIKE = re.compile(
    r"[<>\u00ab\u00bb]|\{\s*[\"']|[\"']\s*:|\bignore\b.{0,20}\b(?:previous|prior|above|earlier)\b|"
    r"\binstruction|\b(?:automated|ai)\s+(?:agent|assistant)\b",
    re.IGNORECASE,
)
_ESCAPES = str.maketrans({"{": "(", "}": ")", "<": "\u2039", ">": "\u203a", "\u00ab": '"', "\u00bb": '"'})
_QUOTED = re.compile("\u00ab([^\u00ab\u00bb]*)\u00bb")
_BRACKETS = re.compile("[<>{}\u00ab\u00bb]")


def as_read(text: str) -> str:
    """The text as a reader (or a model) takes it: NFKC-normalised, format characters (Unicode category Cf:
    zero-width spaces and joiners, bidi controls) dropped, every run of whitespace (line breaks included) one
    space."""
    if text.isascii():  # the common case, and a fast one: NFKC leaves ASCII as it is, and no ASCII character is Cf
        return " ".join(text.split())
    visible = "".join(c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf")
    return " ".join(visible.split())


def one_line(text: str) -> str:
    """One line, format characters dropped, otherwise the text as written (units such as µg keep their form)."""
    if text.isascii():  # no ASCII character is a format character (Cf)
        return " ".join(text.split())
    return " ".join("".join(c for c in text if unicodedata.category(c) != "Cf").split())


def _poses_as_instruction(read: str) -> bool:
    return (
        CONTROL_TOKEN.search(read) is not None
        or ROLE_MARKER.search(read) is not None
        or INSTRUCTION_LIKE.search(read) is not None
    )


def quote_record_text(text: str) -> str:
    """``«...»``: record text escaped so it cannot pose as a turn, a tool call or an instruction: read as
    :func:`as_read` does, chat-template tokens removed, role markers (``SYSTEM:``) bracketed, braces, angle
    brackets and the quote marks themselves replaced (so JSON or a closing quote cannot break out)."""
    escaped = CONTROL_TOKEN.sub("[control token removed]", as_read(text))
    escaped = ROLE_MARKER.sub(lambda m: f"[{m.group(1)}]", escaped)
    return f"{RECORD_QUOTE[0]}{escaped.translate(_ESCAPES)}{RECORD_QUOTE[1]}"


def needs_quoting(text: str, *, free_text: bool = False) -> bool:
    """Whether text straight from the record is quoted: (read as :func:`as_read` does) it holds a control token,
    a role marker, JSON-like or instruction-like text (a guillemet included), or (``free_text``: a note, a
    description) :data:`FREE_TEXT_WORDS` words or more."""
    read = as_read(str(text))
    return _poses_as_instruction(read) or (free_text and len(read.split()) >= FREE_TEXT_WORDS)


def guard_record_text(text: str) -> str:
    """The one quoting rule as a line's part passes it: ``text`` on one line, as it is when plain, else
    :func:`quote_record_text`. The ``«...»`` this rule already made inside a part (a display :func:`clean`
    quoted) is kept as it is: the rest of the part decides (idempotent)."""
    if not text:
        return ""
    flat = one_line(str(text))
    rest = _QUOTED.sub(lambda m: " " if _quoted_safely(m.group(1)) else m.group(0), as_read(flat))
    return quote_record_text(flat) if needs_quoting(rest) else flat


def _quoted_safely(inner: str) -> bool:
    """What :func:`quote_record_text` leaves inside the quotes: no control token, no role marker, no bracket."""
    return CONTROL_TOKEN.search(inner) is None and ROLE_MARKER.search(inner) is None and _BRACKETS.search(inner) is None


def neutralize_control_tokens(text: str) -> str:
    """``text`` with every chat-template control token defused (``<end_of_turn>`` -> ``‹end_of_turn›``), so
    no tokenizer parses it as one; everything else unchanged."""
    return CONTROL_TOKEN.sub(lambda m: m.group(0).translate(_ESCAPES).replace("[", "(").replace("]", ")"), text)
