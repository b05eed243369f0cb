"""The exit codes that scripts and cron jobs rely on."""

OK = 0
ROWS_NEED_ATTENTION = 1
CANNOT_START = 2
RUN_LOCKED = 3
STOPPED_EARLY = 4
INTERRUPTED = 130
