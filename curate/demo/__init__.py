"""The generated demo corpus: all five RePIC sources in their native formats (also the test fixtures)."""

from curate.demo.corpus import FAULT_KINDS, SOURCES, generate_corpus, load_faults

__all__ = ["FAULT_KINDS", "SOURCES", "generate_corpus", "load_faults"]
