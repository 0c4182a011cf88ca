"""The room's buttons and lights (gpiozero): join, hang-up, mute; in-call and muted LEDs.

gpiozero calls back on its own threads; every press is handed to the event
loop with ``call_soon_threadsafe``. Presses are idempotent in the call itself
(join while joining does nothing), so contact bounce and impatient fingers do
no harm.

Example, on gpiozero's mock pins and a Janus at ``janus_url``:

>>> import asyncio
>>> from gpiozero import Device
>>> from gpiozero.pins.mock import MockFactory
>>> from appliance.app.call import Call, CallState, Media
>>> from appliance.app.config import ButtonsConfig
>>> from appliance.engine import Engine, EngineProfile, User
>>> from appliance.screen import Compositor
>>> Device.pin_factory = MockFactory()
>>> async def press_join(url):
...     engine = Engine.create(EngineProfile(server=url))
...     call = Call(engine, "doc-buttons", User("room-42"), None, Media(None, None, Compositor(640, 360, "bgra"), None))
...     buttons = Buttons(ButtonsConfig(), call, asyncio.get_running_loop())
...     Device.pin_factory.pin(17).drive_low()  # JOIN (GPIO17) pressed: pulled up, so low
...     while call.state is not CallState.IN_CALL:
...         await asyncio.sleep(0.05)
...     buttons.update(call)
...     lit = buttons.in_call_led.is_lit
...     buttons.close()
...     await call.hangup()
...     await engine.destroy()
...     return lit
>>> asyncio.run(asyncio.wait_for(press_join(janus_url), 20))
True
>>> Device.pin_factory.reset()
>>> Device.pin_factory = None
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gpiozero import LED, Button

from .call import Call, CallState
from .config import ButtonsConfig


class Buttons:
    def __init__(
        self,
        config: ButtonsConfig,
        call: Call,
        loop: asyncio.AbstractEventLoop,
        on_long_press: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._buttons: list[Button] = []
        self.in_call_led = LED(config.in_call_led) if config.in_call_led else None
        self.muted_led = LED(config.muted_led) if config.muted_led else None
        self._add(config.join, call.join)
        self._add(config.mute, call.toggle_mute)
        hangup = self._add(config.hangup, call.press_hangup)
        if hangup is not None and config.long_press > 0 and on_long_press is not None:
            hangup.hold_time = config.long_press
            hangup.when_held = lambda: loop.call_soon_threadsafe(on_long_press)

    def _add(self, pin: str, action: Callable[[], object]) -> Button | None:
        if not pin:
            return None
        button = Button(pin, pull_up=True)
        button.when_pressed = lambda: self._loop.call_soon_threadsafe(action)
        self._buttons.append(button)
        return button

    def update(self, call: Call) -> None:
        """Lights the LEDs for the call's state (on the event loop)."""
        if self.in_call_led is not None:
            self.in_call_led.value = call.state is CallState.IN_CALL
        if self.muted_led is not None:
            self.muted_led.value = call.muted

    def close(self) -> None:
        for device in [*self._buttons, self.in_call_led, self.muted_led]:
            if device is not None:
                device.close()
