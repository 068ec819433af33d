"""Tests of the gateway library, mirroring gateway/."""
