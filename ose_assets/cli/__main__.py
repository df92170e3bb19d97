"""`python -m ose_assets.cli` = `ose`."""

from ose_assets.cli import main

main()
