"""The store's tables, as a list of migrations applied in order, each in its own transaction."""

from __future__ import annotations

from ..client.columns import MESSAGE_COLUMNS as WIRE_COLUMNS

MIGRATIONS = (
    """
    CREATE TABLE messages (
        message_id BIGINT PRIMARY KEY,
        action_datetime TIMESTAMPTZ,
        message_type VARCHAR,
        sender VARCHAR,
        receiver VARCHAR,
        content VARCHAR,
        pages INTEGER,
        lang VARCHAR,
        flash BOOLEAN,
        count INTEGER,
        sent INTEGER,
        not_sent INTEGER,
        status VARCHAR,
        send_status VARCHAR,
        send_method VARCHAR,
        cost DOUBLE,
        tariff DOUBLE,
        title VARCHAR,
        "desc" VARCHAR,
        is_read BOOLEAN,
        money_is_refunded BOOLEAN,
        user_id BIGINT,
        synced_at TIMESTAMPTZ
    );
    CREATE TABLE batches (
        batch_id BIGINT PRIMARY KEY,
        line VARCHAR,
        text VARCHAR,
        recipients INTEGER,
        sent_at TIMESTAMPTZ,
        campaign VARCHAR,
        complete BOOLEAN DEFAULT false,   -- every page of its report has been stored once
        pending INTEGER,                  -- recipients whose status may still change
        last_checked TIMESTAMPTZ
    );
    CREATE TABLE deliveries (
        batch_id BIGINT,
        "row" INTEGER,                    -- 1-based, as GetBatchDelivery's index
        number VARCHAR,
        operator VARCHAR,
        status INTEGER,                   -- the last real status seen (-3 only if never seen before)
        final BOOLEAN,
        expired BOOLEAN DEFAULT false,    -- the service answered -3: the report window has passed
        first_seen TIMESTAMPTZ,
        last_checked TIMESTAMPTZ,
        PRIMARY KEY (batch_id, "row")
    );
    CREATE TABLE delivery_events (
        batch_id BIGINT,
        "row" INTEGER,
        status INTEGER,
        observed_at TIMESTAMPTZ           -- the poll that first saw this status: an upper bound
    );
    CREATE TABLE sync_runs (
        run_id INTEGER PRIMARY KEY,
        started_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        outcome VARCHAR,                  -- running, ok, failed, interrupted, killed
        calls INTEGER,
        pages INTEGER,
        rows_new BIGINT,
        rows_updated BIGINT,
        retries INTEGER,
        error VARCHAR
    );
    CREATE TABLE sync_state (
        key VARCHAR PRIMARY KEY,
        value JSON
    );
    """,
    """
    CREATE TABLE campaigns (
        name VARCHAR PRIMARY KEY,
        line VARCHAR,
        text VARCHAR,
        flash BOOLEAN,
        recipients INTEGER,
        invalid_numbers INTEGER,
        duplicates INTEGER,
        blacklisted INTEGER,              -- NULL: the deployment cannot tell
        parts INTEGER,
        encoding VARCHAR,
        created_at TIMESTAMPTZ,
        state VARCHAR,                    -- sending, stopped, done
        stop_reason VARCHAR
    );
    CREATE TABLE campaign_chunks (
        campaign VARCHAR,
        chunk INTEGER,
        numbers VARCHAR[],
        state VARCHAR,                    -- planned, in_flight, sent, failed, unknown
        batch_id BIGINT,
        code INTEGER,
        updated_at TIMESTAMPTZ,
        PRIMARY KEY (campaign, chunk)
    );
    """,
    """
    CREATE TABLE store_meta (
        key VARCHAR PRIMARY KEY,          -- account, address: whose history this store holds
        value VARCHAR
    );
    CREATE TABLE campaign_holders (
        campaign VARCHAR PRIMARY KEY,     -- the one process allowed to send this campaign
        host VARCHAR,
        pid INTEGER,
        process_start VARCHAR,            -- with host and pid: a process, not a reused pid
        claimed_at TIMESTAMPTZ,
        heartbeat TIMESTAMPTZ             -- a holder silent for longer than its lease is dead
    );
    ALTER TABLE batches ADD COLUMN unknown_since TIMESTAMPTZ;   -- first -2 ("no such batch") seen
    ALTER TABLE batches ADD COLUMN gone BOOLEAN DEFAULT false;  -- still -2 after the grace period
    ALTER TABLE sync_runs ADD COLUMN host VARCHAR;
    ALTER TABLE sync_runs ADD COLUMN pid INTEGER;
    ALTER TABLE sync_runs ADD COLUMN process_start VARCHAR;
    ALTER TABLE sync_runs ADD COLUMN requeued INTEGER;
    ALTER TABLE sync_runs ADD COLUMN pauses INTEGER;
    ALTER TABLE sync_runs ADD COLUMN paused_seconds DOUBLE;
    ALTER TABLE sync_runs ADD COLUMN batches_unreadable INTEGER;
    ALTER TABLE sync_runs ADD COLUMN recipients_unreadable BIGINT;
    """,
    """
    CREATE TABLE alerts (
        alert_id INTEGER PRIMARY KEY,
        incident VARCHAR,                 -- what the incident is about: one open row per incident
        kind VARCHAR,                     -- delivery_drop, code_surge, credit, line_inactive, service, ...
        severity VARCHAR,                 -- warning, critical
        operator VARCHAR,
        line VARCHAR,
        code INTEGER,
        title VARCHAR,
        title_fa VARCHAR,
        evidence JSON,                    -- counts, rates with intervals, baseline used, codes that moved
        first_seen TIMESTAMPTZ,
        last_seen TIMESTAMPTZ,
        ended_at TIMESTAMPTZ              -- NULL while the incident lasts
    );
    CREATE TABLE watch_cycles (
        cycle_id INTEGER PRIMARY KEY,
        clock TIMESTAMPTZ,                -- the cycle's "now" (the service's clock)
        outcome VARCHAR,                  -- ok, failed
        code INTEGER,                     -- the service's code when it refused (9 updating, 10 disabled)
        error VARCHAR,
        calls INTEGER,
        rows_new BIGINT,
        rows_updated BIGINT,
        urgent_pages INTEGER,             -- report pages read first because they were closest to day 7
        unreadable BIGINT,                -- recipients whose report expired unread since the cycle before
        at_risk BIGINT,                   -- recipients whose report expires within a day, still unread
        raised INTEGER,
        ended INTEGER,
        elapsed DOUBLE
    );
    CREATE TABLE alert_sms (
        sent_at TIMESTAMPTZ,              -- wall clock: the hourly cap is about people's phones
        number VARCHAR,
        alert_id INTEGER,
        dry_run BOOLEAN
    );
    """,
    # the watch's outbox: each notice owed to each sink, kept until delivered or refused
    """
    CREATE TABLE alert_outbox (
        delivery_id INTEGER PRIMARY KEY,
        alert_id INTEGER,
        event VARCHAR,                    -- raised, ended
        sink VARCHAR,                     -- the sink's name (never a password or a token)
        notice JSON,                      -- what the sink is given, as it was when queued
        queued_at TIMESTAMPTZ,
        state VARCHAR,                    -- waiting, delivered, refused (the receiver said no for good)
        attempts INTEGER,
        done_at TIMESTAMPTZ,
        last_error VARCHAR,
        UNIQUE (alert_id, event, sink)
    );
    """,
    # a batch retired as gone, its recipients not yet counted by a watch cycle as no longer readable
    "ALTER TABLE batches ADD COLUMN gone_untold BOOLEAN DEFAULT false;",
    # which notice of the alert an SMS claim is for (raised, ended): a notice reaches a number once
    "ALTER TABLE alert_sms ADD COLUMN event VARCHAR;",
)

MESSAGE_COLUMNS = tuple(WIRE_COLUMNS.values())  # the messages table holds every MessageInfo field
TABLES = ("messages", "batches", "deliveries", "delivery_events", "sync_runs", "sync_state", "campaigns")
