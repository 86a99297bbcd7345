"""A fleet of simulated OCO agents, as load generator and as demo.

`python -m ocoserver.simulate` runs N agents of either protocol generation
against a server. They check in at an interval, send their inventory when
the hello response requests it, download packages and report job states.
Every response is checked as a strict agent would check it. See
`__main__.py` for the options.
"""

from ocoserver.simulate.agent import AgentIdentity, ProtocolError
from ocoserver.simulate.fleet import FleetOptions, run_fleet
from ocoserver.simulate.stats import Stats

__all__ = ["AgentIdentity", "FleetOptions", "ProtocolError", "Stats", "run_fleet"]
