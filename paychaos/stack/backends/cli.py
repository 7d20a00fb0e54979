"""``paychaos up|status|down`` for the Docker backend (``paychaos up --backend docker``).

The containers run detached by nature: ``up`` starts them and returns (or, with
``--foreground``, stays until Ctrl-C and removes them); ``stack.json`` in the
state directory records the project, engine and URLs, so that ``status``,
``down``, ``paychaos chaos`` and ``paychaos run`` find the stack.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from paychaos.contracts.errors import InvalidInput
from paychaos.stack.backends.docker import DockerStack, DockerStackConfig
from paychaos.stack.embedded import StackPorts
from paychaos.stack.state import StackState


def _stack_from_state(state: StackState) -> DockerStack:
    docker = state.target.actuators.docker if state.target else None
    cfg = DockerStackConfig(
        state_dir=state.state_dir,
        ports=StackPorts(**state.ports) if state.ports else StackPorts(),
        project=state.project or "paychaos",
        docker_host=docker.host if docker else "",
        build_missing=False,
        app=state.app,
        webapp=state.webapp,
    )
    return DockerStack(cfg)


def docker_up(args: argparse.Namespace) -> int:
    if args.no_proxy:
        raise InvalidInput("--no-proxy is not supported with --backend docker")
    ports = StackPorts.from_base(args.port_base) if args.port_base else StackPorts()
    cfg = DockerStackConfig(
        state_dir=args.state_dir,
        ports=ports,
        project=args.project,
        docker_host=os.environ.get("DOCKER_HOST", ""),
        scrape_interval_s=args.scrape_interval_s,
        gateway_latency_scale=args.gateway_latency_scale,
        tracing=not args.no_tracing,
        ready_timeout_s=args.timeout_s,
        app=getattr(args, "app", "python"),
        webapp=bool(getattr(args, "webapp", False)),
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
            f"  {comp.get('status') or '?':<8} {name:<13} container {comp.get('container')}"
            f"  restarts {comp.get('restarts', 0)}"
        )
    print()
    for name, url in (state.get("urls") or {}).items():
        print(f"  {name:<17} {url}")


def docker_status(state: StackState) -> int:
    described = _stack_from_state(state).describe()
    print_state(described)
    comps = described.get("components") or {}
    return 0 if comps and all(c.get("status") == "running" for c in comps.values()) else 1


def docker_down(state: StackState) -> int:
    stack = _stack_from_state(state)
    names = sorted(stack.containers())
    stack.stop()
    print(f"removed {len(names)} containers of project {stack.cfg.project}: {', '.join(names)}")
    return 0


__all__ = ["docker_down", "docker_status", "docker_up"]
