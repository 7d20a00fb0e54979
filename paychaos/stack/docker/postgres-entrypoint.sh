#!/bin/sh
# Initialise the cluster on first start (trust auth: loopback only), then run
# postgres in the foreground as the postgres user. Extra arguments go to postgres.
set -eu
BIN=/usr/lib/postgresql/15/bin
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    su postgres -s /bin/sh -c "$BIN/initdb -D '$PGDATA' -U postgres --auth=trust --encoding=UTF8 --no-sync --no-instructions" >/dev/null
fi
exec su postgres -s /bin/sh -c "exec $BIN/postgres -D '$PGDATA' -p '$PGPORT' \
    -c listen_addresses='$PGHOST_LISTEN' -c unix_socket_directories='' \
    -c max_connections=100 -c fsync=off -c full_page_writes=off -c synchronous_commit=on \
    -c shared_buffers=64MB -c log_min_messages=warning $*"
