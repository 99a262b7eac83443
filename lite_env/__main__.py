"""`python -m lite_env` runs the CLI."""

from lite_env.cli import main

main()
