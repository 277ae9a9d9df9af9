"""Forecasts from the site's own history: the half-hour history (CSV and the local SQLite store),
England & Wales bank holidays, the forecasters and their walk-forward evaluation.

A part: imports only the kernel (`controller.core`) and the engine (`controller.engine`). Pure and
synchronous except `history.HistoryStore` (a file); every function that needs "now" takes it.
"""
