"""Developer tools: benchmarks and the tiny test-model builder."""
