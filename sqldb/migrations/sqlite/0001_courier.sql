-- Courier schema for SQLite, version 1: the transactional outbox, the
-- idempotent consumer's tracking table and the relay's leader lease.

CREATE TABLE IF NOT EXISTS message (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    destination   TEXT    NOT NULL,
    headers       TEXT    NOT NULL,
    payload       BLOB    NOT NULL,
    published     INTEGER NOT NULL DEFAULT 0,
    creation_time INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS message_unpublished ON message (published, seq);

CREATE TABLE IF NOT EXISTS received_messages (
    consumer_id   TEXT    NOT NULL,
    message_id    TEXT    NOT NULL,
    creation_time INTEGER NOT NULL,
    PRIMARY KEY (consumer_id, message_id)
);

CREATE INDEX IF NOT EXISTS received_messages_creation_time ON received_messages (creation_time);

CREATE TABLE IF NOT EXISTS courier_lease (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    token      INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    beats      INTEGER NOT NULL DEFAULT 0
);
