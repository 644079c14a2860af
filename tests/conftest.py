"""Shared fixtures: one real nats-server (JetStream, temporary store, free port) per test session."""

from __future__ import annotations

import os

import pytest

from streamwise.bus.client import connect
from streamwise.bus.server import EmbeddedServer
from streamwise.service.pool import Pool

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tenant quotas off for the suite (many requests of tenant "default" share one server and its
# quota ledger); tests/test_tenancy.py sets its own quotas for its own schedulers.
os.environ.setdefault("STREAMWISE_QUOTAS", "off")


@pytest.fixture(scope="session")
def nats_server():
    """A real nats-server started for this test session, stopped (store removed) at the end."""
    with EmbeddedServer() as server:
        yield server


@pytest.fixture(scope="session")
def nats_url(nats_server) -> str:
    return nats_server.url


@pytest.fixture
async def bus(nats_url):
    """A connected :class:`~streamwise.bus.client.Bus` with the layout created."""
    b = await connect(nats_url, name="pytest")
    yield b
    await b.close()


@pytest.fixture(scope="module")
def pool(nats_url, tmp_path_factory):
    """Scheduler + one worker per stage, as separate OS processes, until the module ends (a
    module that needs other options defines its own ``pool``)."""
    p = Pool(nats_url, log_dir=tmp_path_factory.mktemp("logs")).start()
    yield p
    p.stop()
