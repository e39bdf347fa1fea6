-- Courier schema for PostgreSQL, version 2: the LISTEN/NOTIFY trigger of
-- version 1 becomes opt-in. NOTIFY serializes committing transactions on
-- the server's notification queue, which costs every outbox writer commit
-- throughput; the tailing relay does not use it at all. A polling relay that
-- wants wake-ups installs it with pgnotify.Install (courier relay -notify).

DROP TRIGGER IF EXISTS courier_outbox_notify ON message;
DROP FUNCTION IF EXISTS courier_outbox_notify();
