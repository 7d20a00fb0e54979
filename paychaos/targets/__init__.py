"""Targets as commands use them: load a target file, open a target by name, check it.

- :mod:`paychaos.targets.load` — a target file (YAML) into a validated
  :class:`~paychaos.contracts.target.Target` (``file:line: field: message``);
- :mod:`paychaos.targets.resolve` — ``--target NAME|FILE`` into a
  :class:`~paychaos.targets.resolve.TargetSession` (a built-in stack that runs,
  one started for the command, or a file);
- :mod:`paychaos.targets.check` — probe every endpoint and actuator
  (``paychaos target check``).
"""
