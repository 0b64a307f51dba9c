"""Where pages come from: live process capture (and, later, core files and synthetic mixes)."""
