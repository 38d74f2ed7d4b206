"""Spotify's Basic Pitch model (``nmp.onnx``, ICASSP 2022, Apache-2.0: LICENSE, NOTICE),
copied from the ``basic-pitch`` 0.4.0 wheel; run by :mod:`server.services.basic_pitch`.
Data only: imports nothing."""
