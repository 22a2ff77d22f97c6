"""Publishing (the Hub side of RePIC Curate): dataset references, publish / versions / pull.

``curate.publish.refs`` (``parse_dataset_ref``, ``resolve_dataset``) is what other
stages use to accept ``ORG/NAME@vX.Y.Z``, ``ORG/NAME@<commit>`` or a build folder.
"""

from curate.publish.refs import DatasetRef, ResolvedDataset, parse_dataset_ref, resolve_dataset

__all__ = ["DatasetRef", "ResolvedDataset", "parse_dataset_ref", "resolve_dataset"]
