"""Reranking: (query, document) relevance scores from cross-encoders on Triton."""
