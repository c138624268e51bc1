"""Per-architecture differences, as data, for the one forward pass in forward.py."""

SUPPORTED_ARCHITECTURES = ("llama", "qwen2", "qwen3", "gemma2", "gemma3")
