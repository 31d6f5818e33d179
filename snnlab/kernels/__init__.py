"""Native kernels: C sources shipped as package data (``*.c``) and their one builder (:mod:`.build`)."""
