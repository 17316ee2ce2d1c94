"""mfbench: reproducibility benchmarks for backpropagation-free, layer-local learning."""
__version__ = "0.1.0"
