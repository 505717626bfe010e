"""sparkfleet: keep a fleet of NVIDIA DGX Sparks ready for Unsloth fine-tuning."""

__version__ = "0.1.0"
