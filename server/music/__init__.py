"""Music shipped with the server (the demo's chorale, as MIDI bytes read with importlib.resources).
Data only: imports nothing."""
