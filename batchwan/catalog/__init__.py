"""What each Wan model takes and costs: fields, rules, limits, defaults, prices."""
