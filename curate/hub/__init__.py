"""The Hub side of RePIC Curate: dataset references, dataset cards, publish / versions / pull.

``curate.hub.refs`` (``parse_dataset_ref``, ``resolve_dataset``) is what other
stages use to accept ``ORG/NAME@vX.Y.Z``, ``ORG/NAME@<commit>`` or a build folder.
"""

from curate.hub.refs import DatasetRef, ResolvedDataset, parse_dataset_ref, resolve_dataset

__all__ = ["DatasetRef", "ResolvedDataset", "parse_dataset_ref", "resolve_dataset"]
