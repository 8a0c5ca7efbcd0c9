"""Unsupported claims: the final answer says an action happened that the run's tools did not do.

"I've refunded the duplicate charge" after ``issue_refund`` answered ``validation_error`` is the
silent failure this catches: the claim is checked against the trajectory, and it stands only if a
tool of the matching kind *succeeded* in this run. A claim in a negated sentence ("I could not
refund …") is not a claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from agentops.harness.evaluators.trajectory import Call

# action -> (claim words, as they appear in a statement that it happened; tool-name stems that do it)
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "refund": (r"refunded|reimbursed|credited (?:back|your)|rembourse|reembolsad[oa]|erstattet|rimborsat[oa]", ("refund", "reimburs", "credit")),
    "send": (r"sent|e-?mailed|messaged|notified|forwarded|envoye|enviad[oa]|gesendet|geschickt|inviat[oa]|mandad[oa]", ("send", "email", "mail", "message", "notify", "forward", "sms")),
    "delete": (r"deleted|removed|erased|purged|supprime|eliminad[oa]|borrad[oa]|geloscht|cancellat[oa] definitivamente|apagad[oa]", ("delete", "remove", "erase", "purge")),
    "book": (r"booked|reserved|scheduled|reserve|reservad[oa]|gebucht|prenotat[oa]|agendad[oa]", ("book", "reserv", "schedul", "calendar", "appointment")),
    "cancel": (r"cancell?ed|annule|cancelad[oa]|storniert|gekundigt|annullat[oa]", ("cancel", "annul", "terminat")),
    "update": (r"updated|changed|modified|reset|mis a jour|actualizad[oa]|atualizad[oa]|aktualisiert|geandert|aggiornat[oa]", ("update", "change", "modify", "set_", "reset", "edit")),
    "create": (r"created|opened a (?:ticket|case)|filed|registered|cree|cread[oa]|criad[oa]|erstellt|angelegt|creat[oa]", ("create", "open", "file", "register", "ticket", "new_")),
    "charge": (r"charged|billed|paid|transferred|debited|paye|pagad[oa]|bezahlt|uberwiesen|pagat[oa]|transferid[oa]", ("charge", "bill", "pay", "transfer", "debit")),
}

_SUBJECT = r"(?:i|we|i've|we've|i have|we have|i've now|i just|we just|i successfully|we successfully|j'ai|nous avons|he|hemos|ich habe|wir haben|eu|nos|ho|abbiamo)"
_PASSIVE = r"(?:has been|have been|was|were|is now|are now|is|are|a ete|ha sido|fue|wurde|ist|foi|e stato|e stata)"
_NEGATION = re.compile(
    r"\b(?:not|n't|never|unable|couldn't|could not|cannot|can't|failed|fail|wasn't|weren't|didn't|unfortunately|"
    r"pas|jamais|no|nunca|nicht|kein\w*|nao|non|impossible|imposible|unable|would|will|can|could|should|if|once|"
    r"pending|requested|attempted|tried|try)\b"
)
_SENTENCES = re.compile(r"(?<=[.!?;\n])\s+")


@lru_cache(maxsize=1)
def _claim_patterns() -> dict[str, tuple[re.Pattern[str], re.Pattern[str]]]:
    """Per action: the claim itself, and a verb coordinated with an earlier claim ("… and e-mailed you")."""
    out = {}
    for action, (words, _stems) in ACTIONS.items():
        out[action] = (
            re.compile(rf"\b{_SUBJECT}\s+(?:\w+ly\s+|already\s+|just\s+|now\s+|also\s+)?(?:{words})\b|\b{_PASSIVE}\s+(?:\w+ly\s+|already\s+|now\s+)?(?:{words})\b|^\s*(?:{words})\b"),
            re.compile(rf"\b(?:and|then|et|y|e|und)\s+(?:also\s+|have\s+)?(?:{words})\b"),
        )
    return out


_ANY_SUBJECT = re.compile(rf"\b{_SUBJECT}\b")


@dataclass(frozen=True)
class Claim:
    action: str
    sentence: str
    supported: bool


def _fold(text: str) -> str:
    # The claim words are written without accents; a cheap fold for the common Latin ones.
    return text.casefold().translate(str.maketrans("éèêëáàâäíìîïóòôöúùûüçñ’", "eeeeaaaaiiiioooouuuucn'"))


def claims(text: str, calls: list[Call]) -> list[Claim]:
    """Every action the text states as done, and whether a succeeded tool call backs it."""
    found: list[Claim] = []
    if not text:
        return found
    for sentence in _SENTENCES.split(_fold(text)):
        for action, (pattern, coordinated) in _claim_patterns().items():
            m = pattern.search(sentence)
            if not m:
                m = coordinated.search(sentence)
                if not m or not _ANY_SUBJECT.search(sentence[: m.start()]):
                    continue
            # A negation or a condition before the claim word makes it not a claim of success.
            if _NEGATION.search(sentence[: m.end()]):
                continue
            stems = ACTIONS[action][1]
            supported = any(c.succeeded and any(s in c.name.lower() for s in stems) for c in calls)
            found.append(Claim(action, sentence.strip()[:200], supported))
    return found


def unsupported(text: str, calls: list[Call]) -> list[Claim]:
    return [c for c in claims(text, calls) if not c.supported]
