"""Allow `python -m app` as well as `morningpost`."""

from app.cli import main

main()
