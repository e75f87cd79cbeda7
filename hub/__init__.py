"""gameday-hub: an event-sourced observability hub for chaos experiment telemetry."""

__version__ = "0.1.0"
