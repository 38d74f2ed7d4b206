"""Tutti's application around the domain: wiring (app, config, cli, appkeys, workers) and the
layers db → services → observability → realtime → rest → clients. Imports rooms and itself."""
