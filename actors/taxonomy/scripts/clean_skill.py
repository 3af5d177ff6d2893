"""Script gate `clean_skills`: normalise one raw skill string, or reject it.

Pure and deterministic (same input, same output), so a retry or a re-run agrees with itself.
It only does what needs no judgement: case, punctuation, version numbers, filler words
("excellent ... skills") and a short list of unambiguous abbreviations. Deciding that two
different names mean the same skill is left to the merge LLM.

Input:  {"raw_text": "Javascript (ES6)."}
Output: {"name": "javascript", "rejected": false, "reason": "ok"}
"""

from __future__ import annotations

import re
import sys
import unicodedata
from typing import Any

from turing_pg.actors.taxonomy.scripts import run

MAX_NAME_LENGTH = 60  # longer than this is a sentence from the posting, not a skill name

# Strings that recruiters put in a skills field that are not skills.
JUNK = frozenset({
    "", "n/a", "na", "none", "tbd", "etc", "various", "other", "others", "see above",
    "see description", "misc", "-", "...",
})  # fmt: skip

# Whole-token abbreviations whose expansion is not a judgement call.
ALIASES = {
    "js": "javascript",
    "k8s": "kubernetes",
    "mgmt": "management",
    "mgr": "manager",
    "ms": "microsoft",
    "postgres": "postgresql",
    "golang": "go",
    "sfdc": "salesforce",
}

# Leading words that qualify a skill without changing it ("Advanced Excel" is Excel).
LEADING_FILLERS = (
    "excellent", "strong", "advanced", "basic", "good", "solid", "proven", "proficiency in",
    "knowledge of", "experience with", "experience in", "familiarity with", "expert in",
)  # fmt: skip
# Trailing words that add nothing ("communication skills" is communication).
TRAILING_FILLERS = ("skills", "skill", "experience", "knowledge", "abilities")

# Languages whose version numbers are noise: "python3", "Java 8+", "php7", "HTML5".
VERSIONED = ("python", "java", "php", "html", "css", "angular", "vue", "es")
_GLUED_VERSION = re.compile(rf"\b({'|'.join(VERSIONED)})\d+(\.\d+)*(\.x|\+)?\b")
_SPACED_VERSION = re.compile(rf"\b({'|'.join(VERSIONED)})\s+v?\d+(\.\d+)*(\.x|\+)?(?=\s|$)")
_PARENTHESES = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_JS_SUFFIX = re.compile(r"\b([a-z]+)\s?\.?js\b")  # reactjs, react js, react.js -> react.js
_SEPARATORS = re.compile(r"[-_]+|\s+-\s+")
_TRAILING_PUNCTUATION = " .,;:!?*•·'\"-"
_LEADING_PUNCTUATION = " ,;:!?*•·'\"-"  # keeps the dot of ".NET"


def clean(raw: str) -> tuple[str, str | None]:
    """The normalised name and None, or the best effort and the reason to reject it."""
    text = unicodedata.normalize("NFKC", raw).lower().strip()
    text = _PARENTHESES.sub(" ", text)
    text = text.lstrip(_LEADING_PUNCTUATION).rstrip(_TRAILING_PUNCTUATION)
    text = _SEPARATORS.sub(" ", text)
    text = _JS_SUFFIX.sub(lambda m: m.group(1) + ".js" if m.group(1) != "java" else m.group(0),
                          text)
    text = _GLUED_VERSION.sub(r"\1", text)
    text = _SPACED_VERSION.sub(r"\1", text)
    text = " ".join(text.split())
    for filler in LEADING_FILLERS:
        if text.startswith(filler + " "):
            text = text[len(filler) + 1:]
    words = text.split()
    while len(words) > 1 and words[-1] in TRAILING_FILLERS:
        words.pop()
    words = [ALIASES.get(w, w) for w in words]
    text = " ".join(words).lstrip(_LEADING_PUNCTUATION).rstrip(_TRAILING_PUNCTUATION)
    if text in JUNK or not any(ch.isalnum() for ch in text):
        return text, "not a skill (empty or filler)"
    if len(text) > MAX_NAME_LENGTH:
        return text[:MAX_NAME_LENGTH], f"longer than {MAX_NAME_LENGTH} characters: a sentence"
    return text, None


def compute(data: dict[str, Any]) -> dict[str, Any]:
    name, reason = clean(str(data["raw_text"]))
    return {"name": name, "rejected": reason is not None, "reason": reason or "ok"}


if __name__ == "__main__":
    sys.exit(run(compute))
