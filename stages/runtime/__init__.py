"""The generic worker runtime: the adapter interface and task context (:mod:`.base`) and the worker
loop (:mod:`.worker`: pulling, EDF order, acks, heartbeats, drain). Knows no particular adapter."""
