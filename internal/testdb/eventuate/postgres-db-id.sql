CREATE SEQUENCE eventuate.message_table_id_sequence START 1;

select setval('eventuate.message_table_id_sequence', (ROUND(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000))::BIGINT);

CREATE TABLE eventuate.new_message (
  dbid BIGINT NOT NULL DEFAULT nextval('eventuate.message_table_id_sequence') PRIMARY KEY,
  id VARCHAR(1000),
  destination TEXT NOT NULL,
  headers TEXT NOT NULL,
  payload TEXT NOT NULL,
  published SMALLINT DEFAULT 0,
  message_partition SMALLINT,
  creation_time BIGINT
);

ALTER SEQUENCE eventuate.message_table_id_sequence OWNED BY eventuate.new_message.dbid;

INSERT INTO eventuate.new_message (id, destination, headers, payload, published, message_partition, creation_time)
    SELECT id, destination, headers, payload, published, message_partition, creation_time FROM eventuate.message ORDER BY id;

DROP TABLE eventuate.message;

ALTER TABLE eventuate.new_message RENAME TO message;
