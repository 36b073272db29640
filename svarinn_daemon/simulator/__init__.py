"""A local SvarInn (MottakService v1) with fault injection, for tests, demos and operators."""

from svarinn_daemon.simulator.faults import FAULT_KINDS, Fault, parse_fault
from svarinn_daemon.simulator.identity import (
    ReceiverIdentity,
    generate_identity,
    write_operator_files,
)
from svarinn_daemon.simulator.letters import LetterFile, SimLetter
from svarinn_daemon.simulator.server import PAGE_SIZE, Simulator
from svarinn_daemon.simulator.state import FailureReport, RequestRecord, SimulatorState

__all__ = [
    "FAULT_KINDS",
    "PAGE_SIZE",
    "FailureReport",
    "Fault",
    "LetterFile",
    "ReceiverIdentity",
    "RequestRecord",
    "SimLetter",
    "Simulator",
    "SimulatorState",
    "generate_identity",
    "parse_fault",
    "write_operator_files",
]
