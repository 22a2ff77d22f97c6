"""Evaluation of personalized captioning: grounding metrics, personal databases, retrieval, caption runner.

See docs/evaluation.md. Heavy libraries (torch, transformers, ultralytics, peft) are imported only
inside the functions that load a model.
"""
