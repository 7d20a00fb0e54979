"""``paychaos up|status|down`` for the Docker backend (``paychaos up --backend docker``).

The containers run detached by nature: ``up`` starts them and returns (or, with
``--foreground``, stays until Ctrl-C and removes them); ``stack.json`` in the
state directory records the project, engine and URLs, so that ``status``,
``down``, ``paychaos chaos`` and ``paychaos run`` find the stack.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from paychaos.contracts.errors import InvalidInput
from paychaos.stack.backends.docker import STATE_FILE, DockerStack, DockerStackConfig
from paychaos.stack.embedded import StackPorts


def docker_state(state_dir: Path) -> dict[str, Any] | None:
    """The recorded Docker stack of ``state_dir``, or None (an embedded stack, or nothing)."""
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("backend") == "docker" else None


def _stack_from_state(state_dir: Path, state: dict[str, Any]) -> DockerStack:
    ports = StackPorts(**state.get("ports", {}))
    cfg = DockerStackConfig(
        state_dir=state_dir,
        ports=ports,
        project=str(state.get("project", "paychaos")),
        docker_host=str(state.get("docker_host", "")),
        admin_token=str(state.get("admin_token", "")),
        build_missing=False,
    )
    return DockerStack(cfg)


def docker_up(args: argparse.Namespace) -> int:
    if args.no_proxy:
        raise InvalidInput("--no-proxy is not supported with --backend docker")
    ports = StackPorts.from_base(args.port_base) if args.port_base else StackPorts()
    cfg = DockerStackConfig(
        state_dir=args.state_dir,
        ports=ports,
        docker_host=os.environ.get("DOCKER_HOST", ""),
        scrape_interval_s=args.scrape_interval_s,
        gateway_latency_scale=args.gateway_latency_scale,
        tracing=not args.no_tracing,
        ready_timeout_s=args.timeout_s,
    )
    stack = DockerStack(cfg, log=print)
    print(f"starting the Docker stack (project {cfg.project}, state in {args.state_dir}) ...")
    stack.start()
    print_state(stack.describe())
    if not args.foreground:
        print("\nstop it with: paychaos down")
        return 0
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        print("stopping ...")
    finally:
        stack.stop()
    return 0


def print_state(state: dict[str, Any]) -> None:
    print(f"docker project {state.get('project')}  engine {state.get('docker_host') or 'default'}")
    for name, comp in (state.get("components") or {}).items():
        print(
            f"  {comp.get('status', '?'):<8} {name:<13} container {comp.get('container')}"
            f"  restarts {comp.get('restarts', 0)}"
        )
    print()
    for name, url in (state.get("urls") or {}).items():
        print(f"  {name:<17} {url}")


def docker_status(state_dir: Path, state: dict[str, Any]) -> int:
    described = _stack_from_state(state_dir, state).describe()
    print_state(described)
    comps = described.get("components") or {}
    return 0 if comps and all(c.get("status") == "running" for c in comps.values()) else 1


def docker_down(state_dir: Path, state: dict[str, Any]) -> int:
    stack = _stack_from_state(state_dir, state)
    names = sorted(stack.containers())
    stack.stop()
    print(f"removed {len(names)} containers of project {stack.cfg.project}: {', '.join(names)}")
    return 0


__all__ = ["docker_down", "docker_state", "docker_status", "docker_up"]
