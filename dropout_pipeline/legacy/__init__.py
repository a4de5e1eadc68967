"""Bringing a legacy V1 installation across: docs/legacy-import.md."""
