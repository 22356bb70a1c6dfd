"""Search over stored corpora: BM25 tokenization and scoring (bm25s), kept apart from storage and gRPC."""
