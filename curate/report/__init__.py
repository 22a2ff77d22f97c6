"""The read side of a build: composition tables and contact sheet (inspect), dataset card, export."""
