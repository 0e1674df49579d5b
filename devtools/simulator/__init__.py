"""Realistic packet simulator for Nightwatch.

Produces packets in the real public wire formats, driven by a seed so the output is deterministic (the same
arguments give the same bytes in any process): ZTF Avro containers (``ztf``), Rubin alerts as Avro containers or
in the Confluent wire format (``rubin``), GCN unified JSON notices and Fermi GBM VOEvents (``gcn``, ``gcn_json``,
``voevent``), each carrying the class it was designed to land in (``true_class``) under ``config/filters.yaml``
and ``config/classification.yaml``, with every value kept well clear of the thresholds there (each format's module
states its design rules). ``mix`` makes a simulated night, ``corrupt`` its bad packets (dead letters),
``designed`` the injection test's packets; ``schema`` loads the Avro schemas, ``avro`` writes Avro with fastavro,
``common`` holds what the formats share. The product never reads anything outside this package and the installed
lsst-alert-packet.
"""

from __future__ import annotations

from devtools.simulator.designed import classes_by_source, designed_packets
from devtools.simulator.mix import DEFAULT_MIX, generate_packets, parse_mix
from devtools.simulator.packet import CLASSES, DEFAULT_START, SOURCES, SimulatedPacket, write_packets
from devtools.simulator.schema import (
    DEFAULT_RUBIN_VERSION,
    available_rubin_versions,
    rubin_schema,
    rubin_schema_id,
    ztf_schema,
)

__all__ = [
    "CLASSES",
    "DEFAULT_MIX",
    "DEFAULT_RUBIN_VERSION",
    "DEFAULT_START",
    "SOURCES",
    "SimulatedPacket",
    "available_rubin_versions",
    "classes_by_source",
    "designed_packets",
    "generate_packets",
    "parse_mix",
    "rubin_schema",
    "rubin_schema_id",
    "write_packets",
    "ztf_schema",
]
