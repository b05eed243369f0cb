"""Static text of the pages batchwan writes (style sheets and scripts inlined into report.html)."""
