"""Where the appliance's files are on an installed system.

The unit (``systemd/appliance.service``), ``scripts/install-pi``, the
configuration defaults and the ``appliance`` command agree on these.
"""

from pathlib import Path

CONFIG = Path("/etc/appliance/appliance.toml")
CONTROL_SOCKET = "/run/appliance/control.sock"
# Members of this group may use the admin socket; the service's own group,
# which can read the token, is not used for that.
ADMIN_GROUP = "appliance-admin"
