"""Command-line tools installed as ``spikeforge.tools``: validation, FPGA bitstream build,
benchmarks (the benchmark scripts also run directly: ``python tools/<script>.py``)."""
