"""The ``churnlens`` command line (typer + rich); it only wires library functions."""
