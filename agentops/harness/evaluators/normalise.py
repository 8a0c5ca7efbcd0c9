"""Normalisation before pattern matching: what an attacker hides, the detector sees.

``views(text)`` returns the text as the model would read it, in several forms: Unicode NFKC with
zero-width and bidi controls removed, HTML entities decoded, HTML comments opened and markup
dropped, and every base64 or percent-encoded segment decoded and appended. Patterns then run on
the lower-cased, accent-folded join of those views (``fold``), so "ignorá", "IGNORE" and
"ｉｇｎｏｒｅ" all read "ignore".
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import unicodedata
from urllib.parse import unquote

# Zero-width characters, soft hyphen, word joiners, BOM, and the bidi embedding/override/isolate
# controls (U+202A-202E, U+2066-2069) used to hide or reorder text.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_COMMENT = re.compile(r"<!--|-->")
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,300}>")
_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=])")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_SPACE = re.compile(r"[ \t\r\f\v]+")
MAX_DECODED = 20


def _printable_ratio(text: str) -> float:
    if not text:
        return 0.0
    good = sum(1 for c in text if c.isprintable() or c in "\n\t")
    letters = sum(1 for c in text if c.isalpha() or c == " ")
    return min(good / len(text), letters / len(text) * 1.4)


def _decode_base64(segment: str) -> str | None:
    padded = segment + "=" * (-len(segment) % 4)
    try:
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    # Identifiers and hashes decode to noise; only text that reads as words counts.
    return text if len(text) >= 8 and _printable_ratio(text) > 0.85 else None


def decoded_segments(text: str) -> list[str]:
    """base64 and percent-encoded segments of ``text``, decoded (at most MAX_DECODED)."""
    out: list[str] = []
    for m in _B64.finditer(text):
        seg = m.group(0)
        if seg.isalpha() and (seg.islower() or seg.isupper()):
            continue  # a plain long word, not an encoding
        decoded = _decode_base64(seg)
        if decoded:
            out.append(decoded)
        if len(out) >= MAX_DECODED:
            return out
    if "%" in text and len(_PCT.findall(text)) >= 3:
        out.append(unquote(text))
    return out


def clean(text: str) -> str:
    """NFKC, invisible characters removed, HTML entities decoded."""
    if not text.isascii():
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    if "&" in text:
        text = html.unescape(text)
    return text


def fold(text: str) -> str:
    """Lower case without accents, whitespace runs collapsed: the form patterns match on."""
    if text.isascii():
        return _SPACE.sub(" ", text.lower())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE.sub(" ", stripped)


def views(text: str) -> str:
    """Every form of ``text`` worth matching, joined by newlines: the cleaned raw text (markup and
    all, so fake closing tags are still seen), the text without markup, and decoded segments."""
    cleaned = clean(text)
    parts = [cleaned]
    if "<" in cleaned:
        parts.append(_TAG.sub(" ", _COMMENT.sub(" ", cleaned)))
    for decoded in decoded_segments(cleaned):
        parts.append(clean(decoded))
    return "\n".join(parts)
