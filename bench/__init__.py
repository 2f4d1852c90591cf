"""Benchmarks of PRODUCT.md's targets, run against the local stand-ins (`python -m bench.run_all`)."""
