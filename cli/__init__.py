"""The `lcodec` command line."""

import lcodec.codec  # noqa: F401  (light: it asks OpenMP for passive waiting before anything imports torch; codec.threads)
