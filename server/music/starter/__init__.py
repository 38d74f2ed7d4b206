"""The starter library's files: MIDI, compressed MusicXML and ``manifest.json``, read with
importlib.resources by :mod:`server.services.starter`. Data only: imports nothing."""
