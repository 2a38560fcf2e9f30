"""vidx: self-hosted search over timestamped video events."""

__version__ = "0.1.0"
