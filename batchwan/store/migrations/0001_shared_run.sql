-- The shared record of runs: every table is keyed by the run's name, so one database holds
-- any number of runs. Columns mirror state.db's, plus who owns each row (a runner's lease).

CREATE TABLE bw_meta (
    run TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run, name)
);

CREATE TABLE bw_tasks (
    run TEXT NOT NULL,
    key TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    task_id TEXT,
    video_url TEXT,
    video_file TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    sending BOOLEAN NOT NULL DEFAULT FALSE,
    submitted_at TEXT,
    finished_at TEXT,
    cost DOUBLE PRECISION NOT NULL,
    resolution TEXT NOT NULL,
    duration INTEGER NOT NULL,
    prior_cost DOUBLE PRECISION NOT NULL DEFAULT 0,
    owner TEXT,
    PRIMARY KEY (run, key)
);
CREATE INDEX bw_tasks_open ON bw_tasks (run, status) WHERE sending OR status = 'running';

CREATE TABLE bw_sheet_rows (
    run TEXT NOT NULL,
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    row_id TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt TEXT NOT NULL,
    image TEXT NOT NULL,
    cost DOUBLE PRECISION NOT NULL,
    resolution TEXT NOT NULL,
    duration INTEGER NOT NULL,
    error TEXT,
    extra TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    line INTEGER,
    PRIMARY KEY (run, position)
);

CREATE TABLE bw_run_lines (
    run TEXT NOT NULL,
    number INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    sent INTEGER NOT NULL DEFAULT 0,
    collected INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '{}',
    runner TEXT,
    PRIMARY KEY (run, number)
);

-- One line per live runner; a runner whose lease has passed is dead, and its rows are adopted.
CREATE TABLE bw_runners (
    run TEXT NOT NULL,
    runner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    lease TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run, runner)
);

-- The create-rate permits of a run: a create may go out on a permit whose free_at has passed.
CREATE TABLE bw_permits (
    run TEXT NOT NULL,
    slot INTEGER NOT NULL,
    free_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    holder TEXT,
    PRIMARY KEY (run, slot)
);
