"""Rollout guard: follow a rolling update, compare new pods with old, recommend."""
