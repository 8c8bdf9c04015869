"""dr: a restore and disaster-recovery orchestrator for Windows / Exchange estates."""

__version__ = "0.1.0"
