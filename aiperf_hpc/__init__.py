"""aiperf-hpc: benchmarking engine for OpenAI-compatible LLM inference servers, built for HPC."""

__version__ = "0.1.0"
