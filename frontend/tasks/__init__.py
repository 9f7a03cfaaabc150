"""Task logic that runs inside Triton's Python-backend stubs (kept free of frontend imports)."""
