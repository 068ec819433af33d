"""Units of work: the only modules that read and write the tables."""
