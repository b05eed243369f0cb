"""Reading sheets of every format and job files into rows, cells as typed."""
