"""One module per book chapter: its figures, tables and computed prose."""
