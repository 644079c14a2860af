"""OpenTelemetry traces across the bus (:mod:`.tracing`), shared by the scheduler and the workers."""
