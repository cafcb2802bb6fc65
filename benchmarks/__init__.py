"""cleanjoin benchmarks: ``./run bench`` runs them all and writes ``benchmarks/RESULTS.md``."""
