"""Run inside the appliance's sandbox: what board do the appliance and gpiozero see?

Prints one JSON line: the model and encoder choice of appliance.media.board,
and the board gpiozero's pin factories identify (or why they cannot).
"""

import json

from gpiozero.pins.local import get_pi_revision
from gpiozero.pins.pi import PiBoardInfo

from appliance.media.board import board_model, choose_encoder

try:
    gpiozero = PiBoardInfo.from_revision(get_pi_revision()).model
except Exception as exc:  # what gpiozero says when it cannot tell
    gpiozero = f"{type(exc).__name__}: {exc}"
print(json.dumps({"model": board_model(), "encoder": choose_encoder("auto"), "gpiozero": gpiozero}))
