"""Layouts: which components live on the instance (seed §7), and on which instance.

- **Option A** ("all-in-one", seed §7.1): the app, Alloy, Loki, Tempo,
  Prometheus (+ Alertmanager) and Grafana on one EC2 instance with Docker.
  Here: the payment API, the collector (the receiving end of Alloy → Loki/Tempo),
  Prometheus and Alertmanager run for real inside the instance's cgroup;
  Grafana, Loki, Tempo, Alloy and the OS + Docker baseline are modelled
  (:mod:`paychaos.stack.footprint`).
- **Option C** (hybrid, seed §7.3): only the app and Alloy on the instance;
  Prometheus, Alertmanager and the collector stand for Grafana Cloud and run
  outside the cgroup.

In both, the gateway (the payment processors) is outside; the database is
outside (RDS) unless ``db_on_instance``. A layout is written ``A@t3.medium``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from paychaos.contracts.errors import InvalidInput
from paychaos.oom.profiles import InstanceProfile, resolve

OPTIONS = ("A", "C")
DEFAULT_LAYOUTS = ("A@t3.medium", "A@t3.large", "C@t3.medium")
MONITORING = ("prometheus", "collector")  # down = monitoring blind


@dataclass(frozen=True)
class Layout:
    """One run: an option (A or C) on an instance profile."""

    option: str
    instance: InstanceProfile
    db_on_instance: bool = False

    @property
    def key(self) -> str:
        return f"{self.option}@{self.instance.name}"

    @property
    def title(self) -> str:
        what = "all-in-one" if self.option == "A" else "app + Alloy, observability in SaaS"
        db = ", database on the box" if self.db_on_instance else ""
        return f"Option {self.option} ({what}{db}) on {self.instance.describe()}"

    @property
    def real_on_instance(self) -> tuple[str, ...]:
        """Embedded-stack components that run inside the instance's cgroup."""
        names = ["api"]
        if self.option == "A":
            names += ["collector", "prometheus", "alertmanager"]
        if self.db_on_instance:
            names.append("postgres")
        return tuple(names)

    @property
    def modelled(self) -> tuple[str, ...]:
        """Footprint processes (paychaos.stack.footprint components) inside the cgroup."""
        if self.option == "A":
            return ("os-docker", "grafana", "alloy", "loki", "tempo")
        return ("os-docker", "alloy")

    @property
    def on_instance(self) -> tuple[str, ...]:
        return (*self.real_on_instance, *self.modelled)


def parse_layout(
    text: str,
    extra: Mapping[str, InstanceProfile] = {},
    *,
    db_on_instance: bool = False,
) -> Layout:
    """``A@t3.medium`` -> :class:`Layout`; ``InvalidInput`` naming the problem."""
    option, sep, instance = text.partition("@")
    option = option.strip().upper()
    if not sep or not instance.strip():
        raise InvalidInput(f"layout {text!r}: expected OPTION@INSTANCE, e.g. A@t3.medium")
    if option not in OPTIONS:
        raise InvalidInput(f"layout {text!r}: option must be one of {', '.join(OPTIONS)}")
    return Layout(option, resolve(instance.strip(), extra), db_on_instance)
