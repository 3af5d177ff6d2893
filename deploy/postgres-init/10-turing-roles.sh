#!/bin/sh
# Runs once, when the postgres container initialises its data directory: the logins of the
# compose file, with the passwords from .env. `turing db up` (the turing-init service) then
# runs as turing_installer, a login that is no superuser (README: "No superuser").
# The three Turing roles are created here (NOLOGIN, as `db up` would) so the logins can be
# members of them from the start; `db up` finds them and leaves them as they are.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v installer_pw="$TURING_INSTALLER_PASSWORD" \
    -v runner_pw="$TURING_RUNNER_PASSWORD" \
    -v admin_pw="$TURING_ADMIN_PASSWORD" <<'SQL'
create role turing_owner nologin;
create role turing_runner nologin;
create role turing_viewer nologin;
create role turing_admin nologin;
create role turing_installer login createrole password :'installer_pw' in role turing_owner;
create role turing_runner_login login password :'runner_pw' in role turing_runner;
create role turing_admin_login login password :'admin_pw' in role turing_admin;
create database pipelines owner turing_installer;
SQL
