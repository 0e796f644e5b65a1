"""Ledger: the per-village file (一村一卷、一事一记、一次一记) that the year-end assessment rests on."""
