"""Loopback servers the ops tests start themselves (tests/servers/), as fixtures of this directory."""

from tests.servers.sshd import sshd  # noqa: F401 - fixture
from tests.servers.web import http_server, test_ca  # noqa: F401 - fixtures
