"""appliance: a Raspberry Pi meeting-room video endpoint on Janus VideoRoom.

The package is layered; each layer imports only from the ones below it:

- :mod:`appliance.engine`: the room model (rooms, users, streams, publish and
  play, five events) on a Janus VideoRoom. A reusable library: it imports
  nothing else from this package.
- :mod:`appliance.media`: cameras, the H.264 encoder, the microphone and the
  speaker on ALSA.
- :mod:`appliance.screen`: the compositor, its layout and the display outputs.
- :mod:`appliance.app`: the daemon: configuration, the call, buttons, the admin
  socket, systemd notification and the ``appliance`` command.
- :mod:`appliance.testing`: synthetic sources, a local Janus, the demo and the
  browser page, for the demo, the tests and the benchmarks.
"""

__version__ = "0.2.0"
