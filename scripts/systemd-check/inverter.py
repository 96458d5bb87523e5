"""A SunSpec inverter on 127.0.0.1:1502 inside the systemd check's container.

heliod's own demo simulator (Modbus TCP, SunSpec models 1 and 103) at a steady 1 GW, so
heliod completes an MWh every 3.6 s and the check sees mints within seconds.
"""

import threading
from datetime import UTC, datetime

from heliod.daemon.cli.simulator import InverterServer, SimulatedInverter, SteadyPower

inverter = SimulatedInverter(SteadyPower(1e9), lambda: datetime.now(UTC), 1_000_000.0)
InverterServer(inverter, port=1502).start()
print("inverter serving on 127.0.0.1:1502", flush=True)
threading.Event().wait()
