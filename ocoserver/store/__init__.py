"""Storage functions, one module per group of tables; all SQL lives here."""
