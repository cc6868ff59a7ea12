"""Feedback analysis: the seed's sentiment, direction and priority of a user's feedback.

A small lexicon, on purpose: deterministic, offline, explainable (the words that decided are
returned). ``sentiment``: positive, negative or neutral; ``direction``: the sentences that ask
for a change; ``priority``: urgent, high, normal or low.
"""

from __future__ import annotations

import re

__all__ = ["analyse"]

_POSITIVE = {
    "good", "great", "excellent", "love", "like", "nice", "perfect", "thanks", "approve",
    "approved", "works", "clear", "helpful", "well", "awesome", "fine", "correct",
}  # fmt: skip
_NEGATIVE = {
    "bad", "wrong", "broken", "hate", "dislike", "poor", "confusing", "unclear", "missing",
    "fails", "failed", "failing", "bug", "error", "slow", "ugly", "incorrect", "worse",
    "reject", "rejected", "problem", "issue", "not", "no", "never", "doesn't", "don't",
    "isn't", "can't", "won't",
}  # fmt: skip
_NEGATIONS = {"not", "no", "never", "doesn't", "don't", "isn't", "can't", "won't"}
_ASKS = re.compile(
    r"\b(should|please|must|need(?:s)? to|change|instead|add|remove|replace|make|use|"
    r"rename|move|fix|update|drop|rather)\b",
    re.IGNORECASE,
)
_URGENT = {"asap", "urgent", "urgently", "immediately", "now", "blocker", "blocking", "critical"}
_HIGH = {"important", "soon", "high", "priority", "must", "major"}
_LOW = {"minor", "nit", "nitpick", "later", "eventually", "someday", "optional", "cosmetic"}
_WORD = re.compile(r"[a-z']+")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|\n+")


def analyse(text: str) -> dict[str, object]:
    """``{sentiment, score, direction, priority, because}`` for a piece of feedback."""
    words = _WORD.findall(text.lower())
    score = 0
    because: list[str] = []
    for k, word in enumerate(words):
        negated = k > 0 and words[k - 1] in _NEGATIONS
        if word in _POSITIVE:
            score += -1 if negated else 1
            because.append(f"not {word}" if negated else word)
        elif word in _NEGATIVE and word not in _NEGATIONS:
            score -= 1
            because.append(word)
    sentiment = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    asks = [s.strip() for s in _SENTENCE.split(text) if s.strip() and _ASKS.search(s)]
    found = set(words)
    if found & _URGENT:
        priority = "urgent"
    elif found & _HIGH:
        priority = "high"
    elif found & _LOW:
        priority = "low"
    else:
        priority = "normal"
    return {
        "sentiment": sentiment,
        "score": score,
        "direction": asks,
        "priority": priority,
        "because": because,
    }
