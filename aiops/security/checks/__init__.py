"""Posture checks, one module per family (see aiops/security/registry.py)."""
