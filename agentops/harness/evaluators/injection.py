"""Injection in tool results: instructions aimed at the model inside data it was asked to read.

Layered. First :mod:`normalise` undoes the hiding (NFKC, zero-width/bidi, markup, base64,
percent-encoding) and folds case and accents. Then each *signal* below looks for one family of
attack, written from the family's shape rather than from any one sample:

* ``override``  — "ignore / forget / disregard … instructions" in EN, FR, ES, DE, PT, IT;
* ``extraction`` — asking for the system prompt or the instructions given;
* ``steer_output`` — telling the reader how to write *its* reply (translate, encode, add a line…);
* ``role_marker`` — fake role or authority markers (``system:``, ``[ADMIN]``, ``BEGIN TRUSTED``,
  fake ``</tool_result>`` tags, ``SYSTEM MESSAGE``);
* ``hidden_note`` — text that says it is for the AI and not for humans;
* ``tool_request`` — asking to call one of this tenant's actual tools;
* ``exfiltration`` — markdown images/links with data in the query, "send/forward … to" an address;
* ``payload`` — script and shell payloads (``javascript:``, ``onerror=``, ``$(…)``);
* ``bare_request`` — a short text that is nothing but a request to an assistant (weak: 0.6);
* ``addresses_model`` — a sentence telling an AI reader what it must do (0.4: not flagged on its
  own, but in the band where the judge layer, when enabled, reads the text).

The score is the strongest signal's weight; :data:`THRESHOLD` flags. Scores between
:data:`AMBIGUOUS` and the threshold are what the optional judge layer re-reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from agentops.harness.evaluators.normalise import fold, views

THRESHOLD = 0.5
AMBIGUOUS = 0.3

# Words, accent-folded, in the six languages.
_IGNORE = (r"(?:ignor\w*|disregard\w*|forget\w*|skip|overrid\w*|bypass\w*|(?:set|put|cast) aside|abandon|oubli\w*|olvid\w*|esquec\w*|esquece\w*|dimentic\w*|"
           r"vergiss\w*|vergessen|ueberseh\w*|missachte\w*|non (?:tenere|considerare)|no (?:hagas caso|tengas en cuenta))")
_RULES = (r"(?:instruction\w*|direction\w*|directive\w*|rules?|prompts?|guidelines?|guidance|orders?|commands?|context|content|data|text|info\w*|"
          r"consignes?|regles?|instrucc\w*|indicacion\w*|reglas?|instruc\w*|regras?|istruzion\w*|regole|indicazion\w*|"
          r"anweisung\w*|instruktion\w*|befehl\w*|regeln|vorgaben)")
_YOU = r"(?:you|your|yours|ton|tes|votre|vos|tu|tus|su|sus|tua|tuoi|tue|dein\w*|ihr\w*|seu|sua|seus|suas)"
_YOUR = r"(?:your|ton|tes|votre|vos|tu|tus|su|sus|tua|tuoi|tue|dein\w*|ihr\w*|seu|sua|seus|suas)"
_REPLY = (r"(?:response|reply|answer|message|output|summary|translation|reponse|respuesta|resposta|risposta|antwort|"
          r"mensaje|mensagem|messaggio|nachricht)")

_SIGNALS: list[tuple[str, float, str]] = [
    ("override", 0.95, rf"\b{_IGNORE}\b[^.\n]{{0,60}}?\b{_RULES}\b"),
    ("override", 0.95, r"\b(?:new|updated|real|actual|nouvelles?|nuevas?|novas?|nuove|neue) (?:instructions?|instrucciones|instrucoes|istruzioni|anweisungen|consignes)\s*(?::|-|follow|below|are)|\b(?:your|ton|votre|tu|su|tua|dein\w*|seu|sua) (?:real|true|actual|new) (?:task|goal|job|purpose|instructions?)\b"),
    ("override", 0.9, r"\b(?:do not|don't|never|ne|no|nao|non|nicht)\b[^.\n]{0,20}\b(?:tell|inform|mention|reveal|dis|dites|digas|diga|conte|dire|sag\w*)\b[^.\n]{0,20}\b(?:user|customer|operator|utilisateur|usuario|cliente|utente|benutzer|nutzer|kunde\w*)\b"),
    ("override", 0.85, r"\b(?:the |this )?(?:assistant|ai|model|agent|chatbot|llm|bot)\b (?:must|should|shall|is required to|needs to) (?:now|only|always|immediately)\b"),
    ("override", 0.9, r"\b(?:you are now|from now on,? you|tu es maintenant|ahora eres|agora voce e|ora sei|du bist jetzt|act as|pretend (?:to be|you are))\b"),
    ("override", 0.85, r"\b(?:instead|rather)\b[^.\n]{0,40}\b(?:print|say|output|reply|respond|write)\b"),
    ("override", 0.85, r"\b(?:just|only|simply) (?:say|print|output|repeat|write)\b|\b(?:reply|respond|answer|print|say|output) (?:with )?(?:only|exactly|verbatim)\b"),
    ("override", 0.8, r"\bif (?:the )?user asks\b|\bif questioned\b|\b(?:repeat|print|output) (?:the following|after me|this sentence)\b"),
    ("extraction", 0.9, r"\b(?:system|initial|original|starting|hidden|secret|initialization|initialisation) (?:prompt|instruction\w*|configuration|config|string)s?\b|\bsystem message\b|\bsystemprompt\b|\bprompt (?:systeme|del sistema|do sistema|di sistema)\b|\bsystem-?prompt\b|\bsystemnachricht\b"),
    ("extraction", 0.85, rf"\b(?:instructions?|prompt|rules|text) {_YOU} (?:were|was|have been) (?:given|told)\b|\bwhat (?:were|are) you (?:told|instructed|not supposed)\b|\b(?:my|your) (?:instructions are|initial instructions)\b|\bi was instructed\b|\bnot supposed to tell\b"),
    ("extraction", 0.85, r"\b(?:repeat|print|output|show|display|reveal|spell ?check|translate|encode)\b[^.\n]{0,40}\b(?:the (?:text|instructions|directions|words|conversation|content) (?:above|before)|(?:previous|above|prior|preceding|initial) (?:text|instructions|directions|prompt|messages?)|this entire conversation|everything (?:above|before|in the system))\b"),
    ("extraction", 0.85, r"\b(?:reveal|disclose|show|print|output|leak|list|dump)\b[^.\n]{0,20}\b(?:hidden|secret|internal|confidential|private) (?:rules|instructions|prompt|guidelines|policies|configuration)\b"),
    ("steer_output", 0.8, rf"\b(?:in|into|to|of|within|from|for) {_YOUR} {_REPLY}\b|\b{_YOUR} {_REPLY}(?:'s)? (?:in|into|to|using|with|backwards?|in reverse)\b"),
    ("steer_output", 0.8, rf"\b(?:encode|encrypt|translate|render|reverse|express|represent|display|modify|enhance|augment|format|rewrite|shift|invert|write|provide|begin|start|end)\b[^.\n]{{0,12}}\b{_YOUR} {_REPLY}\b"),
    ("steer_output", 0.75, r"^\W*(?:can you |please )?(?:reply|respond|answer|write back) (?:[\w']+ ){0,3}(?:in|using|with|backwards?|reverse)\b"),
    ("role_marker", 0.85, r"(?:^|[\s\[\(|>])(?:system|assistant|developer|admin|administrator|root)\s*:\s*\S|\[(?:admin|system|developer|root|sudo|operator|important|override)\]"),
    ("role_marker", 0.85, r"\b(?:begin|end|start)\s*(?:of\s*)?(?:trusted|system|admin|privileged|verified|official)\b|<\|?(?:im_start|im_end|system|endoftext)\|?>"),
    ("role_marker", 0.85, r"</?\s*(?:system|instructions?|tool_result|tool_output|function_results?|user|assistant|context|document|data|untrusted\w*|search_results?)\s*>"),
    ("role_marker", 0.8, r"\b(?:system|admin|administrator|developer|security) (?:message|note|notice|override|alert|update|command|instruction|chain of thought)\b|\b(?:administrator|admin|developer|maintenance|debug|god) (?:override|mode)\b"),
    ("role_marker", 0.7, r"\bassistant\s*:.{0,200}\buser\s*:"),
    ("hidden_note", 0.8, r"\b(?:invisible|hidden) (?:to|from) (?:humans?|users?|readers?)\b|\bvisible (?:only )?to (?:the )?(?:llm|ai|model|assistant|bot)s?\b|\b(?:note|message|instructions?) (?:to|for|by) (?:the |any |a )?(?:ai|llm|assistant|model|language model|bot|trustworthy)\b|\bfor (?:automated|ai) (?:screening|systems?|review|readers?)\b|\bwhite[- ]text\b|\bhidden (?:competency|profile|text|instructions?|prompt)\b|\b(?:report only|critical to my career)\b"),
    ("exfiltration", 0.9, r"!\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]+\?[^)\s]*=[^)\s]*\)"),
    ("exfiltration", 0.85, r"\[[^\]\n]{0,100}\]\(\s*https?://[^)\s]+\?[^)\s]*(?:\{|%7b|data|secret|token|key|prompt|history|conversation|password)[^)\s]*\)"),
    ("exfiltration", 0.85, r"(?<!was )(?<!been )(?<!be )\b(?:send|forward|transmit|upload|leak|envoie\w*|envia\w*|invia\w*|sende\w*|schick\w*)\b[^.\n]{0,80}\b(?:to|a|an|à|para|al)\s+[\w.+-]+@[\w-]+\.[\w.]+"),
    ("exfiltration", 0.8, r"\bshare (?:their|your|the) (?:bank|card|account|login|password|credentials?)\b[^.\n]{0,40}\b(?:to|at|with)\b"),
    ("payload", 0.8, r"\bjavascript:|\bdata:text/html|\bon(?:error|load|mouseover)\s*=|\bdocument\.cookie\b|<\s*script\b|\balert\s*\(\s*['\"\d]"),
    ("payload", 0.75, r"\$\(\s*(?:touch|rm|curl|wget|cat|ls|sh|bash|nc|python)\b|`\s*(?:touch|rm|curl|wget|cat|ls|nc)\b[^`]*`|\b(?:system|exec|kernel\.exec|popen)\s*\(\s*['\"](?:touch|rm|curl|wget|cat|ls|sh|bash)\b|@\{\[|\beval\s*\(\s*['\"]"),
]

# Weak (below THRESHOLD, in the judge's band): a sentence that addresses an AI reader with an obligation.
_ADDRESSES_MODEL = re.compile(r"\b(?:ai|assistant|chatbot|llm|language model|agent|bot)s?\b[^.\n]{0,60}\b(?:must|should|shall|needs? to|has to|is to|please)\b")

# A whole text that is only a request to an assistant (a tool result that reads as a prompt).
_BARE = re.compile(
    r"^\W*(?:(?:can|could|would|will) you|(?:how|what|which|why|who|when|where)(?: \w+)? (?:are|is|do|does|did|have|has|can|should|would|were|was)|suggest|recommend|"
    r"write|provide|show|list|summari[sz]e|describe|analy[sz]e|determine|classify|explain|help me|tell me|give me|create|generate|"
    r"compose|draft|find|translate|encode|encrypt|decode|reverse|add|include|integrate|insert|modify|enhance|augment|"
    r"rewrite|mention|replace|express|render|apply|shift|is this|reply|respond|answer|complete|continue|repeat|print|output|start|begin)\b"
)
BARE_MAX_CHARS = 240


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, float, re.Pattern[str]]]:
    return [(name, weight, re.compile(pattern, re.MULTILINE)) for name, weight, pattern in _SIGNALS]


@lru_cache(maxsize=256)
def _tool_request(names: tuple[str, ...]) -> re.Pattern[str] | None:
    names = tuple(n for n in names if n and len(n) >= 3)
    if not names:
        return None
    alts = "|".join(re.escape(fold(n)).replace("_", "[_ ]") for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:call|use|invoke|run|execute|trigger|perform|issue|appel\w*|llam\w*|usa\w*|chiam\w*|ruf\w*|aufrufen|utilis\w*|ejecut\w*|execut\w*|esegu\w*)\b[^.\n]{{0,40}}\b(?:{alts})\b")


@dataclass(frozen=True)
class InjectionVerdict:
    score: float
    signals: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        return self.score >= THRESHOLD


def analyse(text: str, *, tool_names: Iterable[str] = ()) -> InjectionVerdict:
    if not text or not text.strip():
        return InjectionVerdict(0.0, ())
    folded = fold(views(text))
    score, hits = 0.0, []
    for name, weight, pattern in _compiled():
        if name in hits:
            continue
        if pattern.search(folded):
            hits.append(name)
            score = max(score, weight)
    tool_pattern = _tool_request(tuple(sorted(set(tool_names))))
    if tool_pattern is not None and tool_pattern.search(folded):
        hits.append("tool_request")
        score = max(score, 0.9)
    stripped = folded.strip()
    if not hits and len(stripped) <= BARE_MAX_CHARS and "\n" not in stripped and "```" not in stripped and _BARE.search(stripped):
        hits.append("bare_request")
        score = max(score, 0.6)
    if not hits and _ADDRESSES_MODEL.search(folded):
        hits.append("addresses_model")
        score = max(score, 0.4)
    # Several independent signals together are stronger than any one.
    if len(hits) >= 2:
        score = min(1.0, score + 0.05 * (len(hits) - 1))
    return InjectionVerdict(round(score, 3), tuple(hits))
