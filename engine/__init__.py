"""The runbook engine: plans as data, the step library, rendering, scheduling, journal, transports.

It knows nothing about Exchange and never imports ``dr``.
"""
