"""The command line, output files and every plot; nothing imports app."""
