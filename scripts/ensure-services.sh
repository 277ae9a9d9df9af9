#!/usr/bin/env bash
# Makes sure the real services the tests talk to are up: PostgreSQL on 127.0.0.1:5432 (trust auth)
# and Mosquitto on 127.0.0.1:1883. Starts them where installed, installs them from Debian where not.
set -u
reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 50); do reachable "$1" && return 0; sleep 0.2; done; return 1; }
apt_install() {
  command -v apt-get >/dev/null || return 1
  [ "$(id -u)" = 0 ] || return 1
  apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

if ! reachable 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "ensure-services: installing postgresql"; apt_install postgresql || true
  fi
  for v in $(ls /etc/postgresql 2>/dev/null); do
    conf=/etc/postgresql/$v/main/pg_hba.conf
    # Tests connect over TCP as postgres without a password, as on the reference machines.
    grep -q "flux-edge-test" "$conf" 2>/dev/null || {
      printf '# flux-edge-test\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' | cat - "$conf" > "$conf.new" && mv "$conf.new" "$conf"; }
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start || true
  done
  wait_for 5432 && echo "ensure-services: postgresql started" || echo "ensure-services: postgresql NOT reachable" >&2
fi

if ! reachable 1883; then
  command -v mosquitto >/dev/null || { echo "ensure-services: installing mosquitto"; apt_install mosquitto || true; }
  if [ -f /etc/mosquitto/mosquitto.conf ]; then mosquitto -d -c /etc/mosquitto/mosquitto.conf
  else mosquitto -d -p 1883; fi
  wait_for 1883 && echo "ensure-services: mosquitto started" || echo "ensure-services: mosquitto NOT reachable" >&2
fi
# systemd-analyze (verify and score the unit file in tests/ops/test_systemd.py); systemd need not run.
if ! command -v systemd-analyze >/dev/null; then
  echo "ensure-services: installing systemd (for systemd-analyze)"; apt_install systemd || true
  command -v systemd-analyze >/dev/null || echo "ensure-services: systemd-analyze NOT available" >&2
fi
# Chromium (Debian's package) for the web page's browser test (tests/ops/test_web_page.py), driven over
# the DevTools protocol; the test skips, saying why, only when none can be installed.
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  echo "ensure-services: installing chromium (for the web page's browser test)"; apt_install chromium || true
  command -v chromium >/dev/null || echo "ensure-services: chromium NOT available: the browser test will skip" >&2
fi
exit 0
