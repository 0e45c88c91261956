#!/bin/sh
# Initialise the cluster on first start (user and database `judge`, password from
# POSTGRES_PASSWORD, password logins from the network), then run PostgreSQL in the foreground.
set -eu
bin=$(echo /usr/lib/postgresql/*/bin)
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    "$bin/initdb" -D "$data" -U judge --pwfile="$pwfile" -E UTF8 \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256
    rm -f "$pwfile"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data/pg_hba.conf"
    echo "host all all ::/0 scram-sha-256" >> "$data/pg_hba.conf"
    "$bin/postgres" --single -D "$data" -c listen_addresses='' postgres <<SQL >/dev/null
CREATE DATABASE judge OWNER judge;
SQL
fi
exec "$bin/postgres" -D "$data" -c listen_addresses='*'
