"""The contracts: the vocabulary every other layer of paychaos speaks.

The bottom layer; it imports nothing of paychaos above it::

    faces       paychaos.cli, the Locust plugin and tabs (paychaos.locust)
    engine      paychaos.scenario, paychaos.runner, paychaos.report, paychaos.oom
    parts       paychaos.stack, paychaos.chaos, paychaos.traffic, paychaos.checks
    contracts   errors, signal types and protocols, metrics, the target model,
                capabilities, the fault and expectation interfaces, domain facts

``lint-imports`` (in ``make test``) fails the build on an import that points up.
"""
