"""RePIC Curate: rebuild, version and train on the RePIC instruction mixture."""

__version__ = "0.1.0"
