#!/usr/bin/env bash
# Start (or stop) a Docker Engine for the Docker-backend tests, the way CI needs it.
#
#   stack/docker/ci-dockerd.sh start   install docker.io, debootstrap, docker-compose if missing (apt),
#                                      start dockerd in the background, wait until it answers
#   stack/docker/ci-dockerd.sh stop    stop the dockerd this script started (by its pid)
#   stack/docker/ci-dockerd.sh status  exit 0 if that dockerd answers
#
# The daemon runs with the flags this machine supports (no overlayfs, no
# iptables, no bridge): containers use `--network host` or `none`.
# Socket and data-root are its own, so it never touches another daemon:
#   PAYCHAOS_DOCKER_SOCK  (default /run/paychaos-docker.sock)
#   PAYCHAOS_DOCKER_ROOT  (default /var/lib/paychaos-docker)
# Use it with: export DOCKER_HOST=unix://$PAYCHAOS_DOCKER_SOCK  (printed by `start`).
set -euo pipefail

SOCK="${PAYCHAOS_DOCKER_SOCK:-/run/paychaos-docker.sock}"
ROOT="${PAYCHAOS_DOCKER_ROOT:-/var/lib/paychaos-docker}"
EXEC_ROOT="${ROOT}-exec"
PIDFILE="${ROOT}.pid"
LOG="${ROOT}.log"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

answers() { DOCKER_HOST="unix://$SOCK" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

install_missing() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v docker >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)  # `config` check of the compose file
    if [ ${#missing[@]} -gt 0 ]; then
        echo "ci-dockerd: installing ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

start() {
    install_missing
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && answers; then
        echo "ci-dockerd: already running, pid $(cat "$PIDFILE")"
    else
        $SUDO mkdir -p "$ROOT" "$EXEC_ROOT"
        # setsid: its own session, so a Ctrl-C of the caller does not reach it
        $SUDO setsid dockerd \
            --host "unix://$SOCK" \
            --data-root "$ROOT" \
            --exec-root "$EXEC_ROOT" \
            --pidfile "$PIDFILE" \
            --storage-driver=vfs --iptables=false --ip-masq=false --bridge=none \
            >"$LOG" 2>&1 </dev/null &
        for _ in $(seq 1 120); do
            answers && break
            sleep 0.5
        done
        if ! answers; then
            echo "ci-dockerd: dockerd did not answer within 60 s; last lines of $LOG:" >&2
            tail -n 30 "$LOG" >&2 || true
            exit 1
        fi
        echo "ci-dockerd: dockerd pid $(cat "$PIDFILE") on unix://$SOCK (log $LOG)"
    fi
    echo "export DOCKER_HOST=unix://$SOCK"
}

stop() {
    if [ -f "$PIDFILE" ]; then
        local pid
        pid="$(cat "$PIDFILE")"
        if kill -0 "$pid" 2>/dev/null; then
            # containers first (they would be killed anyway), then the daemon
            DOCKER_HOST="unix://$SOCK" docker ps -q 2>/dev/null | xargs -r env DOCKER_HOST="unix://$SOCK" docker rm -f >/dev/null 2>&1 || true
            $SUDO kill -TERM "$pid"
            for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -0 "$pid" 2>/dev/null && $SUDO kill -KILL "$pid"
            echo "ci-dockerd: stopped pid $pid"
        fi
        $SUDO rm -f "$PIDFILE"
    else
        echo "ci-dockerd: not running (no $PIDFILE)"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) answers ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
