"""The `lcodec` command line."""

import os

# Passive OpenMP waiting before anything imports torch (why: codec.threads; importing codec here would
# import torch and slow down `lcodec --help`).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
