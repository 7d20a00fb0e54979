"""The t3 CPU credit balance, from AWS's published figures, applied as the cgroup's CPU quota.

A burstable (T) instance earns CPU credits at a fixed rate and spends one credit per
vCPU-minute at 100 % ("one CPU credit equals one vCPU running at 100 % utilization for
one minute"). In standard mode, with credits it may use all its vCPUs; once the balance
is spent, "CPU utilization is gradually lowered to the baseline level" and it "cannot
burst above baseline until it accrues more credits". Sources (AWS EC2 User Guide):

- https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-credits-baseline-concepts.html
  (earn / spend, standard mode down to baseline when the balance is spent);
- https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-performance-instances-standard-mode-concepts.html
  ("T4g, T3a and T3 instances do not receive launch credits": the launch balance is 0);
- the credit table (same guide, "CPU credits earned per hour"): t3.medium 2 vCPU,
  24 credits per hour, baseline 20 % per vCPU, at most 576 earned credits (24 hours of
  earning); t3.large 2 vCPU, 36 per hour, 30 %, 864. Only these two are built in.

Simplification, said where it is used: the quota drops to the baseline in one step when
the balance is spent (AWS lowers it gradually), and rises back to all vCPUs once
0.05 credit is earned beyond what the baseline spends. At the baseline the instance earns
exactly what it spends (t3.medium: 24 credits/h = 0.4 vCPU-minutes per minute = 20 % of
2 vCPUs), so a spent t3.medium under steady load stays at its baseline.

Example::

    bucket = CreditBalance(T3_CREDITS["t3.medium"], balance=0.0)
    bucket.step(dt_s=1.0, cpu_s=0.8)     # used 0.8 CPU-seconds in a second
    bucket.quota_cores()                 # 0.4: the baseline, 20 % of 2 vCPUs
"""

from __future__ import annotations

from dataclasses import dataclass

CREDIT_CPU_S = 60.0  # one credit = one vCPU at 100 % for one minute
# a spent balance bursts again only from this many credits (3 vCPU-seconds): at the
# baseline, earning and spending cancel and rounding must not flip the quota each second
BURST_MIN_CREDITS = 0.05


@dataclass(frozen=True)
class CreditSpec:
    """An instance type's published credit figures."""

    vcpu: int
    earned_per_hour: float
    baseline_per_vcpu: float  # a fraction of one vCPU
    max_balance: float
    launch_credits: float = 0.0  # T3: none

    @property
    def baseline_cores(self) -> float:
        return self.vcpu * self.baseline_per_vcpu


T3_CREDITS: dict[str, CreditSpec] = {
    "t3.medium": CreditSpec(2, 24.0, 0.20, 576.0),
    "t3.large": CreditSpec(2, 36.0, 0.30, 864.0),
}


@dataclass
class CreditBalance:
    """A running balance: :meth:`step` earns and spends, :meth:`quota_cores` says what the
    instance may use now."""

    spec: CreditSpec
    balance: float

    def step(self, dt_s: float, cpu_s: float) -> float:
        """Earn for ``dt_s`` seconds, spend ``cpu_s`` CPU-seconds; returns the new balance."""
        earned = self.spec.earned_per_hour * max(0.0, dt_s) / 3600.0
        spent = max(0.0, cpu_s) / CREDIT_CPU_S
        self.balance = min(self.spec.max_balance, max(0.0, self.balance + earned - spent))
        return self.balance

    def quota_cores(self) -> float:
        if self.balance >= BURST_MIN_CREDITS:
            return float(self.spec.vcpu)
        return self.spec.baseline_cores
