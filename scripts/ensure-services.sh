#!/usr/bin/env bash
# Make sure the services the tests talk to are answering; start them the documented way if not.
# Also installs the Debian packages the tests need (Chromium for pulse's status-page test).
set -u
say() { echo "[services] $*"; }

# photon's local target routes through HAProxy; `ensure-services.sh haproxy` does only this part.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  say "installing Debian's haproxy (photon's local router)"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq haproxy >/dev/null) || { say "could not install haproxy"; exit 1; }
fi
say "haproxy ok"
[ "${1:-}" = "haproxy" ] && exit 0

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if ! pg_up; then
  say "PostgreSQL not answering; starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
pg_up && say "PostgreSQL ok" || { say "PostgreSQL is not answering on 127.0.0.1:5432"; exit 1; }

my_up() { mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; }
if ! my_up; then
  say "MariaDB not answering; starting it"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 30); do my_up && break; sleep 1; done
fi
my_up && say "MariaDB ok" || { say "MariaDB is not answering on 127.0.0.1:3306"; exit 1; }
# LOAD DATA LOCAL INFILE needs the server to allow it (MariaDB's default is ON; make sure).
mariadb --protocol=tcp -h 127.0.0.1 -uroot -e "SET GLOBAL local_infile=1" >/dev/null 2>&1 || true

if ! command -v chromium >/dev/null 2>&1; then
  say "installing Debian's chromium (pulse status-page test)"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || { say "could not install chromium"; exit 1; }
fi
say "chromium ok"
