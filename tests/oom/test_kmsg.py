"""The kernel log's oom-kill records: parsed, filtered to one cgroup, and an unreadable log
reported with its reason (the caller then names victims by their SIGKILL exits)."""

from __future__ import annotations

from pathlib import Path

from paychaos.oom.kmsg import KernelOomLog, parse_oom_kill, parse_record

# as /dev/kmsg hands them out (one record per read), from this machine's kernel
RECORD = (
    "6,2411,24720197313,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,"
    "mems_allowed=0,oom_memcg=/paychaos-oom-a-t3.medium-4100,"
    "task_memcg=/paychaos-oom-a-t3.medium-4100,task=prometheus,pid=4242,uid=0\n"
    " SUBSYSTEM=memory\n"
)


def test_an_oom_kill_record_names_task_pid_and_cgroup() -> None:
    parsed = parse_record(RECORD)
    assert parsed is not None and parsed[0] == 24720.197313
    kill = parse_oom_kill(*parsed)
    assert kill is not None
    assert (kill.task, kill.pid, kill.memcg) == (
        "prometheus",
        4242,
        "/paychaos-oom-a-t3.medium-4100",
    )


def test_other_records_and_garbage_are_not_kills() -> None:
    other = "6,2412,24720197328,-;Memory cgroup out of memory: Killed process 4242 (prometheus)"
    parsed = parse_record(other)
    assert parsed is not None and parse_oom_kill(*parsed) is None
    assert parse_record("no semicolon here") is None
    assert parse_record("6,x,y;message") is None


def test_an_unreadable_log_says_why(tmp_path: Path) -> None:
    log = KernelOomLog("paychaos-oom-a-t3.medium-1", path=str(tmp_path / "no-kmsg"))
    assert not log.available and "no-kmsg" in log.reason
    assert log.poll() == []
    log.close()
