"""The command-line face. Each command lives in its own module, imported only
when that command runs, so ``stockade --help`` stays fast."""
