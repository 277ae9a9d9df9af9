#!/usr/bin/env bash
# Remove flux-edge: stop and disable the unit, remove it and the code. The site file, the secrets
# and the state (the outbox, with readings not yet uploaded) are kept unless --purge is given.
#
#   systemd/uninstall.sh [--root DIR] [--purge] [--no-systemctl]
set -euo pipefail

ROOT=""
PURGE=no
SYSTEMCTL=yes
SERVICE_USER=flux-edge

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
    --purge) PURGE=yes; shift ;;
    --no-systemctl) SYSTEMCTL=no; shift ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "uninstall.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -n "$ROOT" ]; then
  SYSTEMCTL=no
elif [ "$(id -u)" != 0 ]; then
  echo "uninstall.sh: run as root (or with --root DIR)" >&2
  exit 1
fi
say() { echo "uninstall.sh: $*"; }

if [ "$SYSTEMCTL" = yes ]; then
  systemctl disable --now flux-edge.service 2>/dev/null || true
fi
rm -f "$ROOT/etc/systemd/system/flux-edge.service"
if [ "$SYSTEMCTL" = yes ]; then systemctl daemon-reload; fi
rm -rf "$ROOT/opt/flux-edge"
say "unit and code removed"

if [ "$PURGE" = yes ]; then
  rm -rf "$ROOT/etc/flux-edge" "$ROOT/var/lib/flux-edge" "$ROOT/etc/flux-edge-limits.yaml"
  if [ -z "$ROOT" ] && getent passwd "$SERVICE_USER" >/dev/null; then
    userdel "$SERVICE_USER" || true
  fi
  say "configuration, secrets and state removed"
else
  say "kept $ROOT/etc/flux-edge and $ROOT/var/lib/flux-edge (the outbox); --purge removes them"
fi
