-- Courier schema for PostgreSQL, version 1: the transactional outbox, the
-- idempotent consumer's tracking table and the relay's leader lease.

CREATE TABLE IF NOT EXISTS message (
    id            VARCHAR(255) PRIMARY KEY,
    destination   VARCHAR(255) NOT NULL,
    headers       TEXT         NOT NULL,
    payload       BYTEA        NOT NULL,
    published     SMALLINT     NOT NULL DEFAULT 0,
    creation_time BIGINT       NOT NULL,
    seq           BIGINT       GENERATED ALWAYS AS IDENTITY UNIQUE
);

CREATE INDEX IF NOT EXISTS message_unpublished ON message (seq) WHERE published = 0;

CREATE TABLE IF NOT EXISTS received_messages (
    consumer_id   VARCHAR(255) NOT NULL,
    message_id    VARCHAR(255) NOT NULL,
    creation_time BIGINT       NOT NULL,
    PRIMARY KEY (consumer_id, message_id)
);

CREATE INDEX IF NOT EXISTS received_messages_creation_time ON received_messages (creation_time);

CREATE TABLE IF NOT EXISTS courier_lease (
    name       VARCHAR(255) PRIMARY KEY,
    owner      VARCHAR(255) NOT NULL,
    token      BIGINT       NOT NULL,
    expires_at BIGINT       NOT NULL,
    beats      BIGINT       NOT NULL DEFAULT 0
);

-- Wake polling relays as soon as a transaction that wrote to the outbox
-- commits (one notification per statement, merged per transaction).
CREATE OR REPLACE FUNCTION courier_outbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('courier_outbox', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS courier_outbox_notify ON message;
CREATE TRIGGER courier_outbox_notify AFTER INSERT ON message
    FOR EACH STATEMENT EXECUTE FUNCTION courier_outbox_notify();
