"""Tests against real running servers, databases, Redis and Chromium."""
