"""Rate-distortion training, validation and export of the image model."""
