"""Homelab AI: a self-hosted AI services API in front of NVIDIA Triton."""

__version__ = "0.1.0"
