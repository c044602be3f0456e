"""The SDK's version, in step with grconnect's releases (SDK 0.3.x speaks grconnect 0.3.x's API)."""

__version__ = "0.3.0"
