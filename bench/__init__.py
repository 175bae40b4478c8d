"""Flint's load benchmark: ``python -m bench.run`` (``make bench``). See bench/README.md."""
