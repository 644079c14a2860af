"""The request workflow: one podcast request as a DAG of tasks (:mod:`.podcast`, ``PodcastPlan``).

Uses the pure core and the bus's message structs and content names, never a bus connection.
"""
