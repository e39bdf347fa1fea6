CREATE TABLE new_message (
  dbid BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id LONGTEXT,
  destination LONGTEXT NOT NULL,
  headers LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  payload LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,
  published SMALLINT DEFAULT 0,
  message_partition SMALLINT,
  creation_time BIGINT
);

INSERT INTO new_message (id, dbid, destination, headers, payload, published, message_partition, creation_time)
    VALUES ('', ROUND(UNIX_TIMESTAMP(CURTIME(4)) * 1000), 'CDC-IGNORED', '{}', '\"ID-GENERATION-STARTING-VALUE\"', 1, null, ROUND(UNIX_TIMESTAMP(CURTIME(4)) * 1000));

INSERT INTO new_message (id, destination, headers, payload, published, message_partition, creation_time)
    SELECT id, destination, headers, payload, published, message_partition, creation_time FROM message${EVENTUATE_OUTBOX_SUFFIX} ORDER BY id;

DROP TABLE message${EVENTUATE_OUTBOX_SUFFIX};

ALTER TABLE new_message RENAME TO message${EVENTUATE_OUTBOX_SUFFIX};

CREATE INDEX message${EVENTUATE_OUTBOX_SUFFIX}_published_idx ON message${EVENTUATE_OUTBOX_SUFFIX}(published, dbid);
