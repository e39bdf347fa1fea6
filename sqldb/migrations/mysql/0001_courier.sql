-- Courier schema for MySQL and MariaDB, version 1: the transactional outbox,
-- the idempotent consumer's tracking table and the relay's leader lease.

CREATE TABLE IF NOT EXISTS message (
    id            VARCHAR(255) NOT NULL PRIMARY KEY,
    destination   VARCHAR(255) NOT NULL,
    headers       TEXT         NOT NULL,
    payload       LONGBLOB     NOT NULL,
    published     SMALLINT     NOT NULL DEFAULT 0,
    creation_time BIGINT       NOT NULL,
    seq           BIGINT       NOT NULL AUTO_INCREMENT UNIQUE,
    KEY message_unpublished (published, seq)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS received_messages (
    consumer_id   VARCHAR(255) NOT NULL,
    message_id    VARCHAR(255) NOT NULL,
    creation_time BIGINT       NOT NULL,
    PRIMARY KEY (consumer_id, message_id),
    KEY received_messages_creation_time (creation_time)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS courier_lease (
    name       VARCHAR(255) NOT NULL PRIMARY KEY,
    owner      VARCHAR(255) NOT NULL,
    token      BIGINT       NOT NULL,
    expires_at BIGINT       NOT NULL,
    beats      BIGINT       NOT NULL DEFAULT 0
) ENGINE = InnoDB;
