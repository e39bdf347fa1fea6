-- postgres application-id
insert into eventuate.message(id, destination, headers, payload, creation_time, published, message_partition) values(?, ?, ?::text, ?::text, (ROUND(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000)), ?, ?)
-- postgres database-id
insert into eventuate.message(id, destination, headers, payload, creation_time, published, message_partition) values('', ?, ?::text, ?::text, (ROUND(EXTRACT(EPOCH FROM CURRENT_TIMESTAMP) * 1000)), ?, ?)
-- mysql application-id
insert into eventuate.message(id, destination, headers, payload, creation_time, published, message_partition) values(?, ?, ?, ?, ROUND(UNIX_TIMESTAMP(CURTIME(4)) * 1000), ?, ?)
-- mysql database-id
insert into eventuate.message(id, destination, headers, payload, creation_time, published, message_partition) values('', ?, ?, ?, ROUND(UNIX_TIMESTAMP(CURTIME(4)) * 1000), ?, ?)
