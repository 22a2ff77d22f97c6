"""Materialization: example plans -> crops -> shards -> manifest. Entry point: :func:`curate.materialize.pipeline.build`."""
