"""An NLP service that works offline and refuses to generate.

Parlant wants an embedder and generators even when every session is manual.
The embedder hashes words into a fixed-size vector (deterministic, no network);
the generators raise and leave a marker file, so a desk that was ever asked to
write a reply is caught by the tests and the log instead of failing quietly.
"""
from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from parlant.core.nlp.embedding import Embedder, EmbeddingResult
from parlant.core.nlp.generation import SchematicGenerator, StreamingTextGenerator, T
from parlant.core.nlp.moderation import ModerationService, NoModeration
from parlant.core.nlp.service import (
    EmbedderHints,
    NLPService,
    SchematicGeneratorHints,
    StreamingTextGeneratorHints,
)
from parlant.core.nlp.tokenization import EstimatingTokenizer

MARKER_NAME = "generation-attempted"
DIMENSIONS = 256
WORD = re.compile(r"\w+", re.UNICODE)


class GenerationRefused(RuntimeError):
    """Parlant tried to generate a reply on the human desk, where only people answer."""


class WordCountTokenizer(EstimatingTokenizer):
    """Estimate tokens as words; close enough for the budget checks Parlant makes."""

    async def estimate_token_count(self, prompt: str) -> int:
        return len(WORD.findall(prompt))


class HashingEmbedder(Embedder):
    """Embed text by hashing its words into buckets: deterministic and offline."""

    def __init__(self) -> None:
        self._tokenizer = WordCountTokenizer()

    async def embed(self, texts: list[str], hints: Mapping[str, Any] = {}) -> EmbeddingResult:
        return EmbeddingResult(vectors=[self.vector(text) for text in texts])

    @staticmethod
    def vector(text: str) -> list[float]:
        """Return the unit-length bag-of-words vector for ``text``."""
        buckets = [0.0] * DIMENSIONS
        for word in WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "big") % DIMENSIONS
            buckets[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(value * value for value in buckets)) or 1.0
        return [value / norm for value in buckets]

    @property
    def id(self) -> str:
        return f"desk-hashing-{DIMENSIONS}"

    @property
    def max_tokens(self) -> int:
        return 8192

    @property
    def tokenizer(self) -> EstimatingTokenizer:
        return self._tokenizer

    @property
    def dimensions(self) -> int:
        return DIMENSIONS


def refuse(marker: Path, what: str) -> GenerationRefused:
    """Leave the marker the tests look for and return the error to raise."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    with marker.open("a", encoding="utf-8") as out:
        out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}\n")
    return GenerationRefused(
        f"the desk was asked to generate ({what}); its sessions must stay in manual mode"
    )


class RefusingGenerator(SchematicGenerator[T]):
    """A schematic generator that raises on every call."""

    def __init__(self, marker: Path, schema_name: str) -> None:
        self._marker = marker
        self._schema_name = schema_name
        self._tokenizer = WordCountTokenizer()

    async def generate(self, prompt: Any, hints: Mapping[str, Any] = {}) -> Any:
        raise refuse(self._marker, f"schematic {self._schema_name}")

    @property
    def id(self) -> str:
        return "desk-refusing-generator"

    @property
    def max_tokens(self) -> int:
        return 8192

    @property
    def tokenizer(self) -> EstimatingTokenizer:
        return self._tokenizer


class RefusingStreamingGenerator(StreamingTextGenerator):
    """A streaming generator that raises on every call."""

    def __init__(self, marker: Path) -> None:
        self._marker = marker
        self._tokenizer = WordCountTokenizer()

    def generate(self, prompt: Any, hints: Mapping[str, Any] = {}) -> Any:
        raise refuse(self._marker, "streaming text")

    @property
    def id(self) -> str:
        return "desk-refusing-streaming-generator"

    @property
    def tokenizer(self) -> EstimatingTokenizer:
        return self._tokenizer


class OfflineNLPService(NLPService):
    """Embeds offline; refuses to generate (see the module docstring)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self._embedder = HashingEmbedder()

    @property
    def supports_streaming(self) -> bool:
        return False

    async def get_schematic_generator(
        self, t: type[T], hints: SchematicGeneratorHints | None = None
    ) -> SchematicGenerator[T]:
        return RefusingGenerator[t](self.marker, t.__name__)  # type: ignore[valid-type]

    async def get_streaming_text_generator(
        self, hints: StreamingTextGeneratorHints | None = None
    ) -> StreamingTextGenerator:
        return RefusingStreamingGenerator(self.marker)

    async def get_embedder(self, hints: EmbedderHints | None = None) -> Embedder:
        return self._embedder

    async def get_moderation_service(self) -> ModerationService:
        # Moderation would ask a model too; the chatroom never requests it.
        return NoModeration()
