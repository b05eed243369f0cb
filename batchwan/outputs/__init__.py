"""What a run hands to people: results.csv, results.xlsx, summary, status, report."""
