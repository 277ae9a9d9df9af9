#!/usr/bin/env bash
# Install or upgrade flux-edge as a systemd service. Idempotent: running it again upgrades the code
# and the unit, and never touches the site file, the secrets file or the outbox once they exist.
#
#   systemd/install.sh [--root DIR] [--source DIR] [--python PY] [--no-venv] [--no-systemctl]
#
#   --root DIR      install under DIR as if it were / (images, packaging, tests): no user is created,
#                   nothing is chowned, systemctl is not called
#   --source DIR    the flux-edge source tree to install (default: this script's repository)
#   --python PY     interpreter for the virtualenv (default: python3)
#   --no-venv       leave /opt/flux-edge/venv alone (the code is installed some other way)
#   --no-systemctl  do not reload, enable or restart the unit
#
# Environment: FLUX_EDGE_PIP_ARGS, extra arguments for `pip install` (e.g. an offline wheel dir).
#
# Layout: /opt/flux-edge/venv (code), /etc/flux-edge/site.yaml (config, writable by the daemon for
# remote updates), /etc/flux-edge/flux-edge.env (secrets, root only: systemd reads it, the daemon
# gets the values in its environment), /var/lib/flux-edge (state: the outbox), the unit in
# /etc/systemd/system.
set -euo pipefail

ROOT=""
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=python3
VENV=yes
SYSTEMCTL=yes
SERVICE_USER=flux-edge

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --source) SOURCE="${2:?--source needs a directory}"; shift 2 ;;
    --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
    --no-venv) VENV=no; shift ;;
    --no-systemctl) SYSTEMCTL=no; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -n "$ROOT" ]; then
  ROOT="$(mkdir -p "$ROOT" && cd "$ROOT" && pwd)"
  SYSTEMCTL=no
elif [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (or with --root DIR)" >&2
  exit 1
fi

OPT="$ROOT/opt/flux-edge"
ETC="$ROOT/etc/flux-edge"
STATE="$ROOT/var/lib/flux-edge"
UNITS="$ROOT/etc/systemd/system"
say() { echo "install.sh: $*"; }

# chown only on a real system: under --root the owner is whoever builds the image.
own() { [ -n "$ROOT" ] || chown "$1" "$2"; }

if [ -z "$ROOT" ]; then
  getent group "$SERVICE_USER" >/dev/null || { groupadd --system "$SERVICE_USER"; say "group $SERVICE_USER created"; }
  getent passwd "$SERVICE_USER" >/dev/null || {
    useradd --system --gid "$SERVICE_USER" --home-dir /var/lib/flux-edge --no-create-home \
      --shell /usr/sbin/nologin --comment "flux-edge controller" "$SERVICE_USER"
    say "user $SERVICE_USER created"; }
fi

install -d -m 0755 "$OPT" "$UNITS"
# The daemon rewrites site.yaml atomically (temp file + rename), so it needs to write the directory.
# Sticky (1770): it may replace the files it owns, never root's (flux-edge.env).
install -d -m 1770 "$ETC"
own "root:$SERVICE_USER" "$ETC"
chmod 1770 "$ETC"
# State: the outbox lives here; kept across upgrades and by uninstall without --purge.
install -d -m 0750 "$STATE"
own "$SERVICE_USER:$SERVICE_USER" "$STATE"
chmod 0750 "$STATE"

if [ "$VENV" = yes ]; then
  [ -x "$OPT/venv/bin/python" ] || { "$PYTHON" -m venv "$OPT/venv"; say "virtualenv created"; }
  # shellcheck disable=SC2086 # FLUX_EDGE_PIP_ARGS is a list of arguments
  "$OPT/venv/bin/python" -m pip install --quiet --upgrade ${FLUX_EDGE_PIP_ARGS:-} "$SOURCE"
  say "flux-edge installed into $OPT/venv"
fi
install -m 0644 "$SOURCE/README.md" "$OPT/README.md"

if [ ! -e "$ETC/site.yaml" ]; then
  install -m 0640 "$SOURCE/config/sites/demo.yaml" "$ETC/site.yaml"
  own "$SERVICE_USER:$SERVICE_USER" "$ETC/site.yaml"
  say "example site file installed: edit $ETC/site.yaml before starting"
fi
if [ ! -e "$ETC/flux-edge.env" ]; then
  install -m 0600 "$SOURCE/systemd/flux-edge.env.example" "$ETC/flux-edge.env"
  own root:root "$ETC/flux-edge.env"
  say "secrets file installed: $ETC/flux-edge.env (root only)"
fi

# Hard limits (FLUX_LIMITS_FILE in the unit): root's, outside the directory the daemon writes.
if [ ! -e "$ROOT/etc/flux-edge-limits.yaml" ]; then
  install -m 0640 "$SOURCE/systemd/flux-edge-limits.yaml.example" "$ROOT/etc/flux-edge-limits.yaml"
  own "root:$SERVICE_USER" "$ROOT/etc/flux-edge-limits.yaml"
  say "hard limits installed: edit $ROOT/etc/flux-edge-limits.yaml (root only) for the site"
fi

install -m 0644 "$SOURCE/systemd/flux-edge.service" "$UNITS/flux-edge.service"
say "unit installed: $UNITS/flux-edge.service"

if [ "$SYSTEMCTL" = yes ]; then
  systemctl daemon-reload
  systemctl enable flux-edge.service
  # An upgrade restarts a running daemon; a fresh install waits for the operator to edit the site file.
  systemctl try-restart flux-edge.service
  say "enabled; start with: systemctl start flux-edge"
fi
