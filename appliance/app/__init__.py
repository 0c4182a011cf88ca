"""The appliance itself: ``appliance run`` and the admin commands.

:class:`~appliance.app.daemon.Daemon` builds the devices, the screen and an
engine from the configuration (:mod:`~appliance.app.config`) and drives a
:class:`~appliance.app.call.Call` from the buttons, auto-join and the admin
socket; :mod:`~appliance.app.cli` is the ``appliance`` command.
"""
