"""The one way in for a query: text -> pruned weighted tokens, by the model or, for an inference-free search,
by the index's IDF table (``idf.py``). The API's ``expand``, the ``Searcher`` (CLI ``search``, ``eval``) and the
query service all go through ``Expander.tokens``; the service only batches the model forward before it
(``vector``). Empty texts and texts that expand to nothing are ``QueryError``s, whoever asks."""
from __future__ import annotations

from . import idf
from .config import PruneConfig
from .errors import QueryError
from .sparse import prune
from .types import SparseVector


def checked(text) -> str:
    """``text`` if it has something to expand; ``QueryError`` for a non-string or whitespace-only text."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("the query is empty")
    return text


class Expander:
    """Expands query texts for one encoder, inference-free when given the index's ``idf_table``."""

    def __init__(self, encoder, idf_table: dict[str, float] | None = None):
        self.encoder, self.idf_table = encoder, idf_table

    @property
    def needs_model(self) -> bool:
        """Whether a text goes through the model (else the IDF table weighs its tokens)."""
        return self.idf_table is None

    def tokens(self, text: str, prune_cfg: PruneConfig = PruneConfig(),
               vector: SparseVector | None = None) -> dict[str, float]:
        """Plain (not key-encoded) query tokens and weights; ``vector``: the model's output for ``text``
        when the caller already ran it (the service batches concurrent queries into one forward). The text is
        only ever model input: no query syntax is parsed from it."""
        text = checked(text)
        if self.idf_table is not None:
            tokens = idf.query_weights(self.encoder.query_tokenizer, text, self.idf_table, self.encoder.special_tokens)
        else:
            vec = vector if vector is not None else self.encoder.encode_query(text)
            tokens = self.encoder.tokens(prune(vec, prune_cfg))
        if not tokens:
            raise QueryError(f"the query {text[:80]!r} expands to no terms of the index: nothing to match")
        return tokens
