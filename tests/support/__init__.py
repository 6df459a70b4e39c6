"""Test helpers shared by several test modules (a local Kubernetes API replay)."""
