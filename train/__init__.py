"""GRPO training stage of RePIC Curate."""
